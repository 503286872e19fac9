// Poll: lists the open polls of your groups (from the poll bot) and votes; the bot
// posts the results in the group when the poll closes.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function status(text, error) {
    $("status").textContent = text;
    $("status").className = error ? "error" : "";
  }
  async function ask(payload) {
    const answer = await Boxless.backend.request(payload);
    if (answer && answer.error) throw new Error(answer.error);
    return answer;
  }
  function render(polls) {
    const box = $("polls");
    box.replaceChildren();
    if (!polls.length) box.append(el("p", "hint", "No polls yet."));
    for (const p of polls.slice().reverse()) {
      const card = el("section", "poll");
      card.dataset.poll = String(p.poll);
      card.append(el("h2", "", p.question));
      const total = p.counts.reduce((a, b) => a + b, 0) || 1;
      p.options.forEach((option, i) => {
        const row = el("div", "option");
        const b = el("button", p.mine === i ? "chosen" : "", option);
        b.disabled = !p.open;
        b.dataset.option = String(i);
        b.addEventListener("click", () => vote(p.poll, i));
        const meter = el("div", "meter");
        const bar = el("span");
        bar.style.width = Math.round((100 * p.counts[i]) / total) + "%";
        meter.append(bar);
        row.append(b, meter, el("span", "count", String(p.counts[i])));
        card.append(row);
      });
      if (!p.open) card.append(el("p", "closed", "Closed: the results are in the group."));
      box.append(card);
    }
  }
  async function load() {
    try {
      render((await ask({ op: "list" })).polls);
      status("");
    } catch (e) {
      status("The poll bot does not answer: " + (e.message || e), true);
    }
  }
  async function vote(poll, option) {
    try {
      await ask({ op: "vote", poll, option });
      status("Voted.");
      await load();
    } catch (e) {
      status(e.message || String(e), true);
    }
  }
  $("refresh").addEventListener("click", load);
  load();
})();

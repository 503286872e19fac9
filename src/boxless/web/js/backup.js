// Backups (docs/devices.md, "Backup and restore"): the Me tab's card. Make an
// encrypted backup of the whole account and download it (with progress), and
// schedule automatic backups to a folder that `boxless up` writes.
//
// For other views: backupCard().

import { ApiError, call } from "./api.js";
import { guarded, h, shortTime, toast } from "./dom.js";

function stylesheet() {
  if (document.getElementById("backup-css")) return;
  document.head.append(h("link", { rel: "stylesheet", href: "css/backup.css", id: "backup-css" }));
}

function size(bytes) {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

/** Download a backup file, showing the bytes received in `bar`. */
async function download(name, total, bar) {
  const response = await fetch(`/api/v1/backup/files/${encodeURIComponent(name)}`, {
    credentials: "same-origin",
    cache: "no-store",
  });
  if (!response.ok || !response.body) throw new Error("the backup could not be downloaded");
  const reader = response.body.getReader();
  const parts = [];
  let got = 0;
  bar.max = total || 1;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.length;
    bar.value = got;
  }
  const url = URL.createObjectURL(new Blob(parts, { type: "application/octet-stream" }));
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function makeSection() {
  const attachments = h("input", { type: "checkbox", id: "backup-attachments" });
  const bar = h("progress", { class: "backup-progress", id: "backup-progress", hidden: true });
  const stage = h("p", { class: "hint backup-stage", role: "status", id: "backup-stage" });
  const make = h("button", { type: "button", id: "backup-make" }, "Make a backup");
  make.addEventListener("click", () =>
    guarded(async () => {
      make.disabled = true;
      bar.hidden = false;
      bar.removeAttribute("value"); // indeterminate while the file is written
      stage.textContent = "Writing the backup…";
      try {
        const made = await call("POST", "/backup", { attachments: attachments.checked });
        stage.textContent = `Downloading ${made.name} (${size(made.bytes)})…`;
        await download(made.name, made.bytes, bar);
        stage.textContent = `Backup saved: ${made.name}, ${size(made.bytes)}, ${made.rows} records. Your recovery phrase opens it.`;
      } catch (err) {
        stage.textContent = "";
        if (err instanceof ApiError) throw err; // guarded() shows it
        toast(err.message, "error");
      } finally {
        make.disabled = false;
        bar.hidden = true;
      }
    }),
  );
  return [
    h(
      "p",
      { class: "hint" },
      "An encrypted copy of everything: contacts, groups, history, settings. ",
      "Only your 24-word recovery phrase opens it (restore with `boxless backup restore`).",
    ),
    h("label", { class: "backup-check" }, attachments, " Include downloaded files"),
    h("div", { class: "buttons" }, make),
    bar,
    stage,
  ];
}

function scheduleSection() {
  const folder = h("input", { type: "text", id: "backup-folder", placeholder: "/home/me/Backups", spellcheck: "false" });
  const every = h("input", { type: "number", id: "backup-every", min: "1", step: "1", value: "24" });
  const keep = h("input", { type: "number", id: "backup-keep", min: "1", max: "1000", value: "7" });
  const status = h("p", { class: "hint", id: "backup-schedule-status", role: "status" });
  const save = h("button", { type: "button", id: "backup-schedule-save" }, "Save");
  const off = h("button", { type: "button", id: "backup-schedule-off", class: "secondary" }, "Turn off");

  const show = (s) => {
    off.hidden = !s.scheduled;
    if (!s.scheduled) {
      status.textContent = "Automatic backups are off.";
      return;
    }
    folder.value = s.folder;
    every.value = String(s.every_hours);
    keep.value = String(s.keep);
    const last = s.last_at_ms ? `last ${shortTime(s.last_at_ms)}` : "none yet";
    status.textContent = `Every ${s.every_hours} h to ${s.folder}, keeping ${s.keep} (${last})${
      s.last_error ? ` — the last one failed: ${s.last_error}` : ""
    }.`;
    status.classList.toggle("backup-failed", Boolean(s.last_error));
  };
  save.addEventListener("click", () =>
    guarded(async () => {
      show(
        await call("PUT", "/backup/schedule", {
          folder: folder.value.trim(),
          every_hours: Number(every.value),
          keep: Number(keep.value),
        }),
      );
      toast("Automatic backups scheduled");
    }),
  );
  off.addEventListener("click", () =>
    guarded(async () => {
      await call("DELETE", "/backup/schedule");
      show({ scheduled: false });
    }),
  );
  guarded(async () => show(await call("GET", "/backup/schedule")));
  return [
    h("h3", {}, "Automatic backups"),
    h("label", { for: "backup-folder" }, "Folder (on this computer)"),
    folder,
    h(
      "div",
      { class: "backup-numbers" },
      h("label", {}, "Every ", every, " hours"),
      h("label", {}, "Keep ", keep),
    ),
    h("div", { class: "buttons" }, save, off),
    status,
  ];
}

/** The Me tab's "Backup" card. */
export function backupCard() {
  stylesheet();
  return h(
    "section",
    { class: "card backup-card", id: "backup-card", "aria-labelledby": "backup-title" },
    h("h2", { id: "backup-title" }, "Backup"),
    ...makeSection(),
    ...scheduleSection(),
  );
}

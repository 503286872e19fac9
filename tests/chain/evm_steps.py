"""Runs a list of transactions on an embedded eth-tester (py-evm) chain and prints
what happened, as JSON: the tool venv's side of the eth-tester contract tests
(tests/unit/test_redenvelopes_ethtester.py builds the calls with Boxless's own
client code, which cannot share a venv with eth-tester: pycryptodome pins).

stdin: {"steps": [{"to": null | "contract" | "0x…", "data": "0x…", "value": 0,
 "from": 0, "randao": "0x…"}]} (to null deploys; "contract" is the last deployed
 address). Each step is sent from eth-tester's account "from" (default 0, private
 key 1; account i has key i + 1) and mined in its own block, whose prevrandao is
 "randao" if given (a test choosing the draw), else random; a call that would
 revert is not sent, its reason is reported.
stdout: [{"ok", "error", "contract", "block", "mix_hash", "prevrandao", "logs": [{"topics", "data"}]}]
"""

import json
import os
import sys

from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed


def main() -> None:
    steps = json.load(sys.stdin)["steps"]
    backend = PyEVMBackend()
    chain = EthereumTester(backend)
    contract = None
    out = []
    for step in steps[:200]:  # bounded
        to = contract if step["to"] == "contract" else step["to"]
        origin = chain.get_accounts()[int(step.get("from", 0))]
        tx = {"from": origin, "gas": 3_000_000, "value": step.get("value", 0), "data": step["data"]}
        if to is not None:
            tx["to"] = to
        try:
            if to is not None:
                chain.call(tx)  # a revert raises here, with its reason
            # block.prevrandao reads the pending header's mix hash while the transaction
            # runs; eth-tester leaves it zero there (it puts a random one only on the
            # sealed header), so draw it here as a real chain's beacon would
            mix = bytes.fromhex(step["randao"][2:]) if "randao" in step else os.urandom(32)
            backend.chain.header = backend.chain.header.copy(mix_hash=mix)
            randao = "0x" + bytes(backend.chain.header.mix_hash).hex()
            receipt = chain.get_transaction_receipt(chain.send_transaction(tx))
        except TransactionFailed as exc:
            out.append({"ok": False, "error": str(exc)})
            continue
        if to is None:
            contract = receipt["contract_address"]
        block = chain.get_block_by_number(receipt["block_number"])
        out.append(
            {
                "ok": receipt["status"] == 1,
                "error": "",
                "contract": contract,
                "block": receipt["block_number"],
                "mix_hash": block["mix_hash"],
                "prevrandao": randao,
                "logs": [
                    {"topics": list(log["topics"]), "data": log["data"]} for log in receipt["logs"]
                ],
            }
        )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

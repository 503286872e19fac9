// Generates tests/vectors/stealth_scopelift.json: ERC-5564 scheme-1 vectors computed
// by an independent implementation, ScopeLift's @scopelift/stealth-address-sdk
// 0.2.2 (npm; noble-secp256k1 + viem), for fixed keys, so the Python code can be
// checked against it without node at test time. Re-run:
//   mkdir /tmp/sdk && (cd /tmp/sdk && npm i @scopelift/stealth-address-sdk@0.2.2)
//   cd tests/vectors && SDK_ROOT=/tmp/sdk/node_modules/@scopelift/stealth-address-sdk \
//     node --import ./register.mjs stealth_scopelift.mjs > stealth_scopelift.json
// (the SDK is published for bun: register.mjs adds the extension resolution it needs)
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const root = process.env.SDK_ROOT;
const crypto = await import(pathToFileURL(`${root}/dist/utils/crypto/index.js`).href);
const { getPublicKey } = await import(
  pathToFileURL(createRequire(`${root}/package.json`).resolve("@noble/secp256k1")).href
);

const hex = (b) => "0x" + Buffer.from(b).toString("hex");
// Keys: sha256 of labels (deterministic, documented), all valid scalars.
const key = (label) => "0x" + createHash("sha256").update(label).digest("hex");
const vectors = [];
for (let i = 0; i < 8; i++) {
  const spendingPrivateKey = key(`boxless stealth vector ${i} spend`);
  const viewingPrivateKey = key(`boxless stealth vector ${i} view`);
  const ephemeralPrivateKey = key(`boxless stealth vector ${i} ephemeral`);
  const meta =
    hex(getPublicKey(spendingPrivateKey.slice(2), true)) +
    hex(getPublicKey(viewingPrivateKey.slice(2), true)).slice(2);
  const out = crypto.generateStealthAddress({
    stealthMetaAddressURI: `st:eth:${meta}`,
    schemeId: 1,
    ephemeralPrivateKey: Buffer.from(ephemeralPrivateKey.slice(2), "hex"),
  });
  const stealthPrivateKey = crypto.computeStealthKey({
    ephemeralPublicKey: out.ephemeralPublicKey,
    schemeId: 1,
    spendingPrivateKey,
    viewingPrivateKey,
  });
  const found = crypto.checkStealthAddress({
    ephemeralPublicKey: out.ephemeralPublicKey,
    schemeId: 1,
    spendingPublicKey: "0x" + meta.slice(2, 68),
    userStealthAddress: out.stealthAddress,
    viewingPrivateKey,
    viewTag: out.viewTag,
  });
  vectors.push({
    spendingPrivateKey, viewingPrivateKey, ephemeralPrivateKey,
    stealthMetaAddress: `st:eth:${meta}`,
    stealthAddress: out.stealthAddress,
    ephemeralPublicKey: out.ephemeralPublicKey,
    viewTag: out.viewTag,
    stealthPrivateKey,
    checkStealthAddress: found,
  });
}
console.log(JSON.stringify({
  source: "@scopelift/stealth-address-sdk 0.2.2 (npm), generateStealthAddress / computeStealthKey / checkStealthAddress",
  generator: "tests/vectors/stealth_scopelift.mjs",
  vectors,
}, null, 1));

import { register } from "node:module";
register("./stealth_scopelift_hooks.mjs", import.meta.url);

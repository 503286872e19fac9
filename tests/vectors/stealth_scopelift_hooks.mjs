// Node resolve hook: the published SDK (built for bun) imports "./types" and "."
// without extensions; try "<spec>.js" and "<spec>/index.js" like bun does.
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    if (!specifier.startsWith(".")) throw err;
    for (const tail of [".js", "/index.js"]) {
      try {
        return await next(specifier + tail, context);
      } catch {}
    }
    throw err;
  }
}

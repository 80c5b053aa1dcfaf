/**
 * Serves web/dist/ on localhost (a tiny static server; no directory listing, no paths outside
 * dist/). `deno task web` builds first. Usage: `deno run -A web/serve.ts [--port 8000]`.
 */
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css",
  png: "image/png",
  svg: "image/svg+xml",
};

/** Starts serving `dir` on 127.0.0.1:`port` (0: any free port); returns the server. */
export function serveStatic(dir: string, port = 0): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const name = path === "/" ? "index.html" : path.slice(1);
    if (!/^[\w.-]+$/.test(name)) return new Response("not found", { status: 404 });
    try {
      const body = await Deno.readFile(`${dir}/${name}`);
      const type = TYPES[name.split(".").pop()!] ?? "application/octet-stream";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--port");
  const port = i >= 0 ? Number(Deno.args[i + 1]) : 8000;
  const dir = new URL("./dist", import.meta.url).pathname;
  const server = serveStatic(dir, port);
  console.log(`scNym web: http://127.0.0.1:${server.addr.port}/ (Ctrl-C to stop)`);
}

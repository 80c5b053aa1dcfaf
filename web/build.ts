/**
 * Builds the web page into web/dist/: the page's script and its worker bundled for the browser
 * (h5wasm's browser build instead of its Node one, through web/imports.json), and index.html.
 */
const web = new URL(".", import.meta.url).pathname;
const dist = `${web}dist/`;

/** Bundles `entry` (in web/) into dist/`out`. */
async function bundle(entry: string, out: string): Promise<void> {
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--import-map",
      `${web}imports.json`,
      "-o",
      `${dist}${out}`,
      `${web}${entry}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`bundling ${entry} failed:\n${new TextDecoder().decode(stderr)}`);
}

/** Builds web/dist/ and returns its path. */
export async function buildWeb(): Promise<string> {
  await Deno.mkdir(dist, { recursive: true });
  await Promise.all([bundle("app.ts", "app.js"), bundle("worker.ts", "worker.js")]);
  await Deno.copyFile(`${web}index.html`, `${dist}index.html`);
  return dist;
}

if (import.meta.main) console.log(`built ${await buildWeb()}`);

#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-sys --allow-net
/**
 * The tunebox command line. Install it once, then call it by name:
 *
 * ```sh
 * deno install -g -A -n tunebox jsr:@tunebox/tunebox/cli   # from JSR
 * deno install -g -A -n tunebox --config deno.json cli.ts  # from a checkout of the repository
 * tunebox --help
 * tunebox run experiment.yaml --set num_samples=4
 * tunebox resume tunebox_results/my-exp
 * tunebox status tunebox_results/my-exp
 * tunebox report tunebox_results/my-exp --out report.html
 * tunebox dashboard tunebox_results/my-exp --port 8265
 * ```
 *
 * The commands live in `cli/` (`cli/main.ts`: the parser, the help and the command table).
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * Deno.exit(await main(["status", "tunebox_results/my-exp"]));
 * ```
 *
 * @module
 */

import { main } from "./cli/main.ts";

export { main, VERSION } from "./cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));

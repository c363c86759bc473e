/**
 * The trainable of the Executor contract suite, as a function and as this module's default
 * export (for executors that run a module). It imports nothing, so it runs in any sandbox.
 *
 * @module
 */

/** The config the contract suite gives {@linkcode contractTrainable}. */
export interface ContractTrainableConfig {
  /** Reported as `value: x * (iteration + 1)`. */
  readonly x: number;
  /** The trial ends after this many iterations. */
  readonly iterations: number;
  /** Throw `contract failure at iteration N` at this iteration, before its report. */
  readonly failAt?: number;
  /** Wait this long before each report. */
  readonly sleepMs?: number;
  /** Also report `cpu` and `gpu` of `session.resources`. */
  readonly showResources?: boolean;
}

/**
 * Reports `{ value: x * (iteration + 1), step: iteration }` from `session.iteration` up to
 * `iterations` (with `session.resources`' `cpu` and `gpu` when `showResources`), waiting `sleepMs`
 * before each report, and throws at `failAt`.
 *
 * @param config The contract config ({@linkcode ContractTrainableConfig}).
 * @param session The trial's session.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { contractTrainable } from "./_contract_trainable.ts";
 * const got: unknown[] = [];
 * await contractTrainable({ x: 3, iterations: 2 }, {
 *   iteration: 0,
 *   report: (m: unknown) => (got.push(m), Promise.resolve()),
 * });
 * assert.deepEqual(got, [{ value: 3, step: 0 }, { value: 6, step: 1 }]);
 * ```
 */
export async function contractTrainable(
  config: ContractTrainableConfig,
  session: {
    readonly iteration: number;
    readonly resources?: { readonly cpu: number; readonly gpu: number };
    report(metrics: Record<string, number>): Promise<void>;
  },
): Promise<void> {
  for (let i = session.iteration; i < config.iterations; i++) {
    if (config.failAt === i) throw new Error(`contract failure at iteration ${i}`);
    if (config.sleepMs) await new Promise((r) => setTimeout(r, config.sleepMs));
    const metrics = { value: config.x * (i + 1), step: i };
    await session.report(
      config.showResources
        ? { ...metrics, cpu: session.resources?.cpu ?? NaN, gpu: session.resources?.gpu ?? NaN }
        : metrics,
    );
  }
}

export default contractTrainable;

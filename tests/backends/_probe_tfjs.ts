// Run by tfjs_test.ts in a sandboxed child: loads tfjs the way a trial does and prints what it got.
import { loadTfjs, type TfjsBackendName } from "../../plugins/backends/tfjs.ts";

// The first argument is a JSON list of backends, or "default" for loadTfjs's own list.
const arg = Deno.args[0] ?? "default";
const prefer = arg === "default" ? undefined : JSON.parse(arg) as TfjsBackendName[];
const warnings: string[] = [];
const { tf, backend } = await loadTfjs({ prefer, warn: (m) => warnings.push(m) });
const sum = tf.tidy(() => tf.matMul(tf.ones([8, 8]), tf.ones([8, 8])).sum().dataSync()[0]);
console.log(JSON.stringify({ backend, active: tf.getBackend(), sum, warnings }));

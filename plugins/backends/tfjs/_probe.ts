// Run by installNativeBackend (and the tests) in a sandboxed `deno run`: loads TensorFlow.js the
// way a trial does and prints, as one JSON line, the backend it got and a sum computed on it.
import { loadTfjs } from "./load.ts";
import type { TfjsBackendName } from "./types.ts";

const arg = Deno.args[0] ?? "default";
const prefer = arg === "default" ? undefined : JSON.parse(arg) as TfjsBackendName[];
const warnings: string[] = [];
const { tf, backend } = await loadTfjs({ prefer, warn: (m) => warnings.push(m) });
const sum = tf.tidy(() => tf.matMul(tf.ones([8, 8]), tf.ones([8, 8])).sum().dataSync()[0]);
console.log(JSON.stringify({ backend, active: tf.getBackend(), sum, warnings }));

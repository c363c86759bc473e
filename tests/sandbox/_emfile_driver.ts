// Run under `prlimit --nofile=N`: floods its own channel server until accept() fails with
// EMFILE, then checks that the expected trial still gets in. Prints "AUTHENTICATED <clients>".
import { TrialChannelServer } from "../../core/channel.ts";
import { encodeLine } from "../../core/protocol.ts";

// As the runner does at start: Deno 2.9.6 panics (ext/signals) when its signal machinery is
// first set up while the process is out of file descriptors.
const onSignal = () => {};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);
const path = Deno.args[0];
const server = new TrialChannelServer(Deno.listen({ transport: "unix", path }), {
  authTimeoutMs: 2000,
  maxUnauthenticated: 10_000,
});
const expected = server.expect("t1", "token");
const clients: Deno.Conn[] = [];
let failure = "";
for (let i = 0; i < 500; i++) {
  try {
    clients.push(await Deno.connect({ transport: "unix", path }));
  } catch (e) {
    failure = (e as Error).message;
    break;
  }
}
await new Promise((r) => setTimeout(r, 300));
for (const c of clients) c.close();
await new Promise((r) => setTimeout(r, 300));
const trial = await Deno.connect({ transport: "unix", path });
await trial.write(
  new TextEncoder().encode(encodeLine({ v: 1, type: "hello", trialId: "t1", token: "token" })),
);
const conn = await expected;
console.log(`AUTHENTICATED ${clients.length} ${conn.trialId} (${failure})`);
conn.close();
trial.close();
server.close();
Deno.removeSignalListener("SIGINT", onSignal);
Deno.removeSignalListener("SIGTERM", onSignal);

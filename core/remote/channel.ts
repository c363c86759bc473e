/**
 * The remote trial channel: the driver listens with TLS on an address the compute
 * nodes reach, with a per-experiment CA and server certificate, and tells trials apart by their
 * per-trial tokens through the same {@linkcode TrialChannelServer} local trials use. A trial
 * needs only `--allow-net=<host>:<port>`; it gets host, port, CA, trial id and token in
 * `TUNEBOX_*` variables ({@linkcode RemoteChannel.trialEnv}).
 *
 * Heartbeats go both ways, because a dead host sends no FIN: the driver pings every trial and
 * treats one that stayed silent for `heartbeatMs` as failed; a trial that heard nothing from the
 * driver for `heartbeatMs` exits (`core/trial_main.ts`). Refused connections (wrong token, a
 * second connection with a token, the token of a finished trial, a failed TLS handshake) are
 * logged.
 *
 * @module
 */

import { type ChannelLimits, TrialChannelServer, type TrialConnection } from "../channel.ts";
import { PROTOCOL_VERSION } from "../protocol.ts";
import { makeServerCertificate } from "./x509.ts";

/** Options of {@linkcode openRemoteChannel}. */
export interface RemoteChannelOptions {
  /**
   * The address trials connect to (and the driver listens on). @default the first non-loopback
   * IPv4 address of this machine ({@linkcode defaultDriverHost})
   */
  readonly host?: string;
  /** The TCP port. @default any free port */
  readonly port?: number;
  /** Silence after which either side gives the other up, in ms. @default 60000 */
  readonly heartbeatMs?: number;
  /** Bounds on what a trial may send (see `core/channel.ts`). */
  readonly limits?: Omit<ChannelLimits, "onRefuse">;
  /** Where refused connections are logged. @default console.warn */
  readonly log?: (message: string) => void;
}

/** An open TLS channel for remote trials. */
export interface RemoteChannel {
  /** The address trials connect to. */
  readonly host: string;
  /** The port. */
  readonly port: number;
  /** The CA certificate (PEM) trials trust. */
  readonly caPem: string;
  /** The heartbeat period in ms. */
  readonly heartbeatMs: number;
  /** The server that authenticates trials: `expect(trialId, token)` before a trial starts. */
  readonly server: TrialChannelServer;
  /** The `--allow-net` entry a trial needs: `<host>:<port>`. */
  readonly netPermission: string;
  /** The `TUNEBOX_*` variables a trial boots with. */
  trialEnv(trialId: string, token: string): Record<string, string>;
  /**
   * Keeps an authenticated connection alive: pings the trial, and when it stays silent for
   * `heartbeatMs` calls `onSilent` and closes the connection (the conversation then ends).
   */
  keepAlive(conn: TrialConnection, onSilent: () => void): TrialConnection;
  /** Stops listening; connections already handed out stay open. */
  close(): void;
}

/** Names of the variables {@linkcode RemoteChannel.trialEnv} sets. */
export const REMOTE_ENV_NAMES: readonly string[] = [
  "TUNEBOX_CHANNEL",
  "TUNEBOX_CA",
  "TUNEBOX_TRIAL_ID",
  "TUNEBOX_TOKEN",
  "TUNEBOX_HEARTBEAT_MS",
  "TUNEBOX_RANK_VAR",
  "TUNEBOX_NODE_VAR",
];

/**
 * The first non-loopback IPv4 address of this machine, else `127.0.0.1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultDriverHost } from "./channel.ts";
 * assert.equal(typeof defaultDriverHost(), "string");
 * ```
 */
export function defaultDriverHost(): string {
  try {
    for (const i of Deno.networkInterfaces()) {
      if (i.family === "IPv4" && !i.address.startsWith("127.")) return i.address;
    }
  } catch { /* no --allow-sys: fall back */ }
  return "127.0.0.1";
}

/**
 * Makes the experiment's CA and certificate and listens with TLS.
 *
 * @example
 * ```ts ignore
 * import { openRemoteChannel } from "./channel.ts";
 * const channel = await openRemoteChannel({ host: "127.0.0.1" });
 * const token = crypto.randomUUID();
 * const connected = channel.server.expect("a_00000", token);
 * // start the trial with channel.trialEnv("a_00000", token) ...
 * channel.close();
 * ```
 */
export async function openRemoteChannel(
  options: RemoteChannelOptions = {},
): Promise<RemoteChannel> {
  const host = options.host ?? defaultDriverHost();
  const heartbeatMs = options.heartbeatMs ?? 60_000;
  if (!(heartbeatMs >= 100)) throw new RangeError(`heartbeatMs must be >= 100, got ${heartbeatMs}`);
  const log = options.log ?? ((m: string) => console.warn(`tunebox: ${m}`));
  const cert = await makeServerCertificate({ names: [host] });
  const listener = Deno.listenTls({
    hostname: host,
    port: options.port ?? 0,
    cert: cert.certPem,
    key: cert.keyPem,
  });
  const port = (listener.addr as Deno.NetAddr).port;
  const server = new TrialChannelServer(listener, {
    ...options.limits,
    onRefuse: (reason, peer) => log(`refused a trial connection from ${peer}: ${reason}`),
  });
  const ca = btoa(cert.caPem);
  return {
    host,
    port,
    caPem: cert.caPem,
    heartbeatMs,
    server,
    netPermission: `${host.includes(":") ? `[${host}]` : host}:${port}`,
    trialEnv(trialId, token) {
      return {
        TUNEBOX_CHANNEL: `tls:${host}:${port}`,
        TUNEBOX_CA: ca,
        TUNEBOX_TRIAL_ID: trialId,
        TUNEBOX_TOKEN: token,
        TUNEBOX_HEARTBEAT_MS: String(heartbeatMs),
      };
    },
    keepAlive(conn, onSilent) {
      let last = Date.now();
      const timer = setInterval(() => {
        if (Date.now() - last > heartbeatMs) {
          clearInterval(timer);
          onSilent();
          conn.close();
          return;
        }
        conn.send({ v: PROTOCOL_VERSION, type: "ping" });
      }, Math.max(50, Math.floor(heartbeatMs / 4)));
      const inner = conn.messages;
      const messages: AsyncIterator<unknown> = {
        async next() {
          try {
            const r = await inner.next();
            last = Date.now();
            if (r.done) clearInterval(timer);
            return r;
          } catch (e) {
            clearInterval(timer);
            throw e;
          }
        },
        async return(v?: unknown) {
          clearInterval(timer);
          return await (inner.return?.(v) ?? Promise.resolve({ done: true, value: v }));
        },
      };
      return {
        trialId: conn.trialId,
        messages,
        send: (m) => conn.send(m),
        close() {
          clearInterval(timer);
          conn.close();
        },
      };
    },
    close() {
      server.close();
    },
  };
}

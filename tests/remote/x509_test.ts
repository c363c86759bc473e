import { deepStrictEqual, ok, rejects } from "#assert";
import { makeServerCertificate } from "../../core/remote/x509.ts";

/** Serves one echo exchange per connection; handshake failures are the client's to see. */
function echoServer(certPem: string, keyPem: string, hostname = "127.0.0.1") {
  const listener = Deno.listenTls({ hostname, port: 0, cert: certPem, key: keyPem });
  const served = (async () => {
    for await (const conn of listener) {
      (async () => {
        try {
          const b = new Uint8Array(5);
          const n = await conn.read(b);
          if (n) await conn.write(b.subarray(0, n));
        } catch { /* a refused handshake */ }
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close(), served };
}

async function echo(opts: Deno.ConnectTlsOptions): Promise<string> {
  const conn = await Deno.connectTls(opts);
  try {
    await conn.write(new TextEncoder().encode("hello"));
    const b = new Uint8Array(5);
    const n = await conn.read(b);
    return new TextDecoder().decode(b.subarray(0, n ?? 0));
  } finally {
    conn.close();
  }
}

Deno.test("a generated CA and leaf carry TLS for the IP and DNS names of the leaf", async () => {
  const c = await makeServerCertificate({ names: ["127.0.0.1", "localhost", "::1"] });
  ok(c.caPem.startsWith("-----BEGIN CERTIFICATE-----\n"));
  ok(c.keyPem.startsWith("-----BEGIN PRIVATE KEY-----\n"));
  const s = echoServer(c.certPem, c.keyPem);
  try {
    deepStrictEqual(
      await echo({ hostname: "127.0.0.1", port: s.port, caCerts: [c.caPem] }),
      "hello",
    );
    deepStrictEqual(
      await echo({ hostname: "localhost", port: s.port, caCerts: [c.caPem] }),
      "hello",
    );
  } finally {
    s.close();
  }
});

Deno.test("TLS refuses a client without the CA, the leaf as its own CA, another experiment's CA and a name not in the SANs", async () => {
  const c = await makeServerCertificate({ names: ["127.0.0.1"] });
  const other = await makeServerCertificate({ names: ["127.0.0.1"] });
  const s = echoServer(c.certPem, c.keyPem, "127.0.0.2");
  const s1 = echoServer(c.certPem, c.keyPem);
  try {
    await rejects(echo({ hostname: "127.0.0.1", port: s1.port }), /UnknownIssuer/);
    await rejects(echo({ hostname: "127.0.0.1", port: s1.port, caCerts: [c.certPem] }));
    await rejects(
      echo({ hostname: "127.0.0.1", port: s1.port, caCerts: [other.caPem] }),
      /UnknownIssuer|BadSignature|invalid peer certificate/,
    );
    await rejects(
      echo({ hostname: "127.0.0.2", port: s.port, caCerts: [c.caPem] }),
      /NotValidForName|invalid peer certificate/,
    );
  } finally {
    s.close();
    s1.close();
  }
});

Deno.test("makeServerCertificate refuses an empty name list", async () => {
  await rejects(makeServerCertificate({ names: [] }), /no names/);
});

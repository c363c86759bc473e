/**
 * A per-experiment certificate authority and a server certificate for the driver's TLS
 * listener, made with WebCrypto (ECDSA P-256, SHA-256) and a small DER writer: no `openssl`
 * and no dependency. Deno (rustls) refuses a self-signed certificate used as its own CA, so
 * there are two: a CA (`basicConstraints CA:TRUE`, `keyCertSign`) whose PEM the trials trust,
 * and a leaf (`serverAuth`, IP and DNS subject alternative names) the driver serves. The CA's
 * private key is thrown away once the leaf is signed.
 *
 * @module
 */

/** The PEM texts of a CA and a server certificate signed by it. */
export interface ServerCertificate {
  /** The CA certificate (PEM): what a trial passes as `caCerts`. */
  readonly caPem: string;
  /** The server certificate (PEM) for `Deno.listenTls({ cert })`. */
  readonly certPem: string;
  /** The server's private key (PKCS#8 PEM) for `Deno.listenTls({ key })`. */
  readonly keyPem: string;
}

/** Options of {@linkcode makeServerCertificate}. */
export interface CertificateOptions {
  /** Host names and IP addresses (v4 or v6) the certificate is valid for. */
  readonly names: readonly string[];
  /** How long it is valid. @default 30 days */
  readonly validDays?: number;
  /** The common name of the CA. @default "tunebox experiment CA" */
  readonly caName?: string;
}

type Bytes = Uint8Array<ArrayBuffer>;

const ALG: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGN: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

/**
 * Makes a fresh CA and a server certificate for `names`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { makeServerCertificate } from "./x509.ts";
 * const { caPem, certPem, keyPem } = await makeServerCertificate({ names: ["127.0.0.1"] });
 * const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: certPem, key: keyPem });
 * listener.close();
 * assert.equal(caPem.startsWith("-----BEGIN CERTIFICATE-----"), true);
 * ```
 */
export async function makeServerCertificate(
  options: CertificateOptions,
): Promise<ServerCertificate> {
  if (!options.names.length) throw new TypeError("makeServerCertificate: no names given");
  const days = options.validDays ?? 30;
  const now = Date.now();
  const notBefore = new Date(now - 3600_000);
  const notAfter = new Date(now + days * 86400_000);
  const ca = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as CryptoKeyPair;
  const leaf = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as CryptoKeyPair;
  const caSpki = new Uint8Array(await crypto.subtle.exportKey("spki", ca.publicKey));
  const leafSpki = new Uint8Array(await crypto.subtle.exportKey("spki", leaf.publicKey));
  const caName = name(options.caName ?? "tunebox experiment CA");
  const caSki = await keyId(caSpki);
  const caCert = await sign(
    tbs({
      serial: serial(),
      issuer: caName,
      subject: caName,
      notBefore,
      notAfter,
      spki: caSpki,
      extensions: [
        ext(OID.basicConstraints, true, seq(bool(true))),
        ext(OID.keyUsage, true, bitString(new Uint8Array([0x06]), 1)), // keyCertSign, cRLSign
        ext(OID.subjectKeyIdentifier, false, octets(caSki)),
      ],
    }),
    ca.privateKey,
  );
  const san = seq(...options.names.map(generalName));
  const leafCert = await sign(
    tbs({
      serial: serial(),
      issuer: caName,
      subject: name(options.names[0]),
      notBefore,
      notAfter,
      spki: leafSpki,
      extensions: [
        ext(OID.basicConstraints, true, seq()),
        ext(OID.keyUsage, true, bitString(new Uint8Array([0x80]), 7)), // digitalSignature
        ext(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
        ext(OID.subjectAltName, false, san),
        ext(OID.authorityKeyIdentifier, false, seq(tlv(0x80, caSki))),
      ],
    }),
    ca.privateKey,
  );
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", leaf.privateKey));
  return {
    caPem: pem("CERTIFICATE", caCert),
    certPem: pem("CERTIFICATE", leafCert),
    keyPem: pem("PRIVATE KEY", pkcs8),
  };
}

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  serverAuth: "1.3.6.1.5.5.7.3.1",
};

interface Tbs {
  serial: Bytes;
  issuer: Bytes;
  subject: Bytes;
  notBefore: Date;
  notAfter: Date;
  spki: Bytes;
  extensions: Bytes[];
}

function tbs(t: Tbs): Bytes {
  return seq(
    tlv(0xa0, int(new Uint8Array([2]))), // v3
    int(t.serial),
    seq(oid(OID.ecdsaWithSha256)),
    t.issuer,
    seq(time(t.notBefore), time(t.notAfter)),
    t.subject,
    t.spki,
    tlv(0xa3, seq(...t.extensions)),
  );
}

async function sign(tbsBytes: Bytes, key: CryptoKey): Promise<Bytes> {
  const raw = new Uint8Array(await crypto.subtle.sign(SIGN, key, tbsBytes));
  // WebCrypto gives r || s; X.509 wants SEQUENCE { INTEGER r, INTEGER s }.
  const sig = seq(int(raw.subarray(0, 32)), int(raw.subarray(32)));
  return seq(tbsBytes, seq(oid(OID.ecdsaWithSha256)), bitString(sig, 0));
}

async function keyId(spki: Bytes): Promise<Bytes> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", spki)).subarray(0, 20);
}

function serial(): Bytes {
  const s = crypto.getRandomValues(new Uint8Array(16));
  s[0] &= 0x7f; // positive
  s[0] |= 0x01; // no leading zero byte to strip
  return s;
}

function name(cn: string): Bytes {
  return seq(tlv(0x31, seq(oid(OID.commonName), tlv(0x0c, new TextEncoder().encode(cn)))));
}

function generalName(n: string): Bytes {
  const ip = parseIp(n);
  return ip ? tlv(0x87, ip) : tlv(0x82, new TextEncoder().encode(n));
}

/** An IPv4 or IPv6 literal as bytes, or undefined. */
function parseIp(s: string): Bytes | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) {
    const b = v4.slice(1).map(Number);
    return b.every((x) => x <= 255) ? new Uint8Array(b) : undefined;
  }
  if (!s.includes(":")) return undefined;
  const [head, tail] = s.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const fill = s.includes("::") ? 8 - h.length - t.length : 0;
  const groups = [...h, ...Array(fill).fill("0"), ...t];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

function ext(id: string, critical: boolean, value: Bytes): Bytes {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

function time(d: Date): Bytes {
  const p = (n: number) => String(n).padStart(2, "0");
  const body = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}` +
    `${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const y = d.getUTCFullYear();
  return y < 2050
    ? tlv(0x17, new TextEncoder().encode(`${p(y % 100)}${body}`)) // UTCTime
    : tlv(0x18, new TextEncoder().encode(`${y}${body}`)); // GeneralizedTime
}

// --- DER -----------------------------------------------------------------------------------

function tlv(tag: number, body: Bytes): Bytes {
  const n = body.length;
  const len = n < 0x80
    ? [n]
    : n < 0x100
    ? [0x81, n]
    : n < 0x10000
    ? [0x82, n >> 8, n & 0xff]
    : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(1 + len.length + n);
  out[0] = tag;
  out.set(len, 1);
  out.set(body, 1 + len.length);
  return out;
}

function cat(parts: Bytes[]): Bytes {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function seq(...items: Bytes[]): Bytes {
  return tlv(0x30, cat(items));
}

function bool(v: boolean): Bytes {
  return tlv(0x01, new Uint8Array([v ? 0xff : 0]));
}

function octets(b: Bytes): Bytes {
  return tlv(0x04, b);
}

function bitString(b: Bytes, unusedBits: number): Bytes {
  return tlv(0x03, cat([new Uint8Array([unusedBits]), b]));
}

/** An unsigned big-endian integer. */
function int(b: Bytes): Bytes {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return tlv(0x02, v[0] & 0x80 ? cat([new Uint8Array([0]), v]) : v);
}

function oid(dotted: string): Bytes {
  const parts = dotted.split(".").map(Number);
  const bytes = [40 * parts[0] + parts[1]];
  for (const p of parts.slice(2)) {
    const enc = [p & 0x7f];
    for (let v = p >>> 7; v > 0; v >>>= 7) enc.unshift(0x80 | (v & 0x7f));
    bytes.push(...enc);
  }
  return tlv(0x06, new Uint8Array(bytes));
}

function pem(label: string, der: Bytes): string {
  let b64 = "";
  const chunk = 0x8000;
  let bin = "";
  for (let i = 0; i < der.length; i += chunk) {
    bin += String.fromCharCode(...der.subarray(i, i + chunk));
  }
  b64 = btoa(bin);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

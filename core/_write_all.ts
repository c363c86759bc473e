// Private to the core and the executors: writes that loop until every byte is written.

/** Writes all of `data` to `file`, synchronously. */
export function writeAllSync(file: Deno.FsFile, data: Uint8Array): void {
  let off = 0;
  // The first write takes the whole view as is (a view less per call: the journal writes once
  // per turn of the runner's loop).
  while (off < data.length) off += file.writeSync(off === 0 ? data : data.subarray(off));
}

/** Writes all of `data` to `to` (a file or a connection). */
export async function writeAll(
  to: { write(p: Uint8Array): Promise<number> },
  data: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < data.length) off += await to.write(data.subarray(off));
}

/**
 * The bytes of one `tally send` input, gunzipped on the way when they start
 * with gzip's magic bytes (`1f 8b`), whatever the file is called: so
 * `events.ndjson.gz` and `zcat`-less stdin read as text. Decompression is a
 * `DecompressionStream("gzip")` pulled one chunk at a time, so a large (or
 * hostile) archive never sits in memory whole.
 *
 * @module
 */

/** Input that starts as gzip and is not valid gzip (corrupt, truncated). */
export class GzipError extends Error {
  constructor(cause: unknown) {
    super("not valid gzip data (corrupt or cut short)", { cause });
    this.name = "GzipError";
  }
}

const isGzip = (head: Uint8Array): boolean => head[0] === 0x1f && head[1] === 0x8b;

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

/**
 * Yields the bytes of `chunks`, decompressed when they are gzip. `onRead`
 * is told the size of every chunk read from `chunks` (compressed bytes, for
 * a progress bar over the file's size). Ending the loop early ends `chunks`.
 * When `stop` is aborted the input ends at once, even in the middle of a
 * read that waits on a slow pipe (destroying stdin does not end such a
 * read on every runtime).
 */
export async function* decoded(
  chunks: AsyncIterable<Uint8Array<ArrayBuffer>>,
  onRead: (bytes: number) => void,
  stop?: AbortSignal,
): AsyncGenerator<Uint8Array, void, undefined> {
  const source = chunks[Symbol.asyncIterator]();
  const read = async (): Promise<IteratorResult<Uint8Array<ArrayBuffer>>> => {
    if (stop === undefined) return source.next();
    if (stop.aborted) return { done: true, value: undefined };
    // A promise and listener per read, dropped after it: one shared "stopped" promise raced again and
    // again would keep every chunk it was raced against reachable until the end.
    let onAbort = (): void => {};
    const stopped = new Promise<IteratorResult<Uint8Array<ArrayBuffer>>>((resolve) => {
      onAbort = () => resolve({ done: true, value: undefined });
      stop.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([source.next(), stopped]);
    } finally {
      stop.removeEventListener("abort", onAbort);
    }
  };
  const next = async (): Promise<Uint8Array<ArrayBuffer> | undefined> => {
    const r = await read();
    if (r.done) return undefined;
    onRead(r.value.byteLength);
    return r.value;
  };
  try {
    // Two bytes decide; a pipe may hand over one at first.
    let head = new Uint8Array(0);
    while (head.byteLength < 2) {
      const chunk = await next();
      if (chunk === undefined) {
        if (head.byteLength > 0) yield head;
        return;
      }
      head = head.byteLength === 0 ? chunk : concat(head, chunk);
    }
    if (!isGzip(head)) {
      yield head;
      for (let chunk = await next(); chunk !== undefined; chunk = await next()) yield chunk;
      return;
    }
    let readError: unknown; // reading the input failed: not a gzip problem
    const compressed = new ReadableStream<BufferSource>({
      start: (controller) => controller.enqueue(head),
      async pull(controller) {
        try {
          const chunk = await next();
          if (chunk === undefined) controller.close();
          else controller.enqueue(chunk);
        } catch (error) {
          readError = error;
          controller.error(error);
        }
      },
    }, { highWaterMark: 0 });
    const reader = compressed.pipeThrough(new DecompressionStream("gzip")).getReader();
    try {
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (error) {
          throw readError ?? new GzipError(error);
        }
        if (r.done) return;
        yield r.value;
      }
    } finally {
      void reader.cancel().catch(() => {});
    }
  } finally {
    // After a stop, a read may still be pending: ending the source must not wait for it.
    const ended = source.return?.();
    if (stop?.aborted) void ended?.catch(() => {});
    else await ended;
  }
}

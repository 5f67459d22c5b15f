import { createHash, hash } from 'node:crypto';

/**
 * RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing, §2.1.1:
 * - the hash of an empty tree is SHA-256 of the empty string;
 * - a leaf is `SHA-256(0x00 || leaf data)`;
 * - an interior node is `SHA-256(0x01 || left || right)`, where a tree of n > 1 leaves splits at k,
 *   the largest power of two smaller than n.
 *
 * In the ledger, leaf i of a partition's tree is the event with `seq = i + 1`, and its leaf data is
 * the UTF-8 canonical JSON of the event body (everything but `prev_hash` and `hash`) followed by
 * the 32 raw bytes of the event's chain hash. See {@link eventLeafHash}.
 */

const LEAF_PREFIX = Buffer.from([0x00]);

/** SHA-256 of the empty string: the root of an empty tree. */
export const EMPTY_TREE_ROOT: Buffer = createHash('sha256').digest();

/** `SHA-256(0x00 || data)`. */
export function leafHash(data: Buffer | string): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest();
}

// One-shot hashing of a reused scratch buffer is about twice as fast as a Hash object per call
// for inputs this small; verification hashes every event twice, so it matters.
let scratch = Buffer.allocUnsafe(8192);

function ensureScratch(bytes: number): Buffer {
  if (scratch.length < bytes) scratch = Buffer.allocUnsafe(Math.max(bytes, scratch.length * 2));
  return scratch;
}

/** `SHA-256(0x01 || left || right)`. */
export function nodeHash(left: Buffer, right: Buffer): Buffer {
  const buf = ensureScratch(65);
  buf[0] = 0x01;
  left.copy(buf, 1);
  right.copy(buf, 33);
  return hash('sha256', buf.subarray(0, 65), 'buffer');
}

/** SHA-256 over the 32 bytes of `prevHex` followed by the UTF-8 of `text`, hex (the chain hash). */
export function sha256HexThenText(prevHex: string, text: string): string {
  const buf = ensureScratch(32 + text.length * 3);
  if (buf.write(prevHex, 0, 'hex') !== 32) throw new TypeError('a chain hash is 32 bytes of hex');
  const n = buf.write(text, 32, 'utf8');
  return hash('sha256', buf.subarray(0, 32 + n), 'hex');
}

/**
 * The leaf hash of a ledger event: `SHA-256(0x00 || canonicalBody || hash)`, with `canonicalBody`
 * the UTF-8 canonical JSON of the event body and `hash` the 32 bytes of its chain hash.
 */
export function eventLeafHash(canonicalBody: string, hashHex: string): Buffer {
  const buf = ensureScratch(1 + canonicalBody.length * 3 + 32);
  buf[0] = 0x00;
  const n = buf.write(canonicalBody, 1, 'utf8');
  if (buf.write(hashHex, 1 + n, 'hex') !== 32) throw new TypeError('an event hash is 32 bytes of hex');
  return hash('sha256', buf.subarray(0, 1 + n + 32), 'buffer');
}

/** The largest power of two strictly smaller than `n` (n > 1). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The right edge of a Merkle tree: the roots of the perfect subtrees that cover leaves `[0, n)`,
 * largest first (one per set bit of n). It is enough to compute the root of the tree of any size
 * `≥ n` from the leaves after n, so the ledger stores it with each checkpoint (to resume after a
 * restart) and keeps it in place of the events a retention job removes.
 */
export class Frontier {
  #nodes: { size: number; hash: Buffer }[] = [];
  #count = 0;

  /** Rebuilds a frontier of `count` leaves from its subtree hashes (largest subtree first). */
  static from(count: number, hashes: readonly (Buffer | string)[]): Frontier {
    const f = new Frontier();
    const sizes: number[] = [];
    for (let bit = 2 ** 52; bit >= 1; bit /= 2) if (Math.floor(count / bit) % 2 === 1) sizes.push(bit);
    if (sizes.length !== hashes.length) {
      throw new RangeError(
        `a frontier of ${count} leaves has ${sizes.length} subtrees, not ${hashes.length}`,
      );
    }
    f.#nodes = sizes.map((size, i) => {
      const h = hashes[i] as Buffer | string;
      const hash = typeof h === 'string' ? Buffer.from(h, 'hex') : h;
      if (hash.length !== 32) throw new RangeError('a subtree hash is 32 bytes');
      return { size, hash };
    });
    f.#count = count;
    return f;
  }

  /** Number of leaves covered. */
  get count(): number {
    return this.#count;
  }

  /** Subtree hashes, largest subtree first (hex). */
  hashes(): string[] {
    return this.#nodes.map((n) => n.hash.toString('hex'));
  }

  /** Appends one leaf hash. */
  push(leaf: Buffer): void {
    this.#nodes.push({ size: 1, hash: leaf });
    this.#count++;
    let n = this.#nodes.length;
    while (
      n >= 2 &&
      (this.#nodes[n - 1] as { size: number }).size === (this.#nodes[n - 2] as { size: number }).size
    ) {
      const right = this.#nodes.pop() as { size: number; hash: Buffer };
      const left = this.#nodes.pop() as { size: number; hash: Buffer };
      this.#nodes.push({ size: left.size * 2, hash: nodeHash(left.hash, right.hash) });
      n--;
    }
  }

  /** The RFC 9162 root of the tree of `count` leaves. */
  root(): Buffer {
    if (this.#nodes.length === 0) return EMPTY_TREE_ROOT;
    let h = (this.#nodes.at(-1) as { hash: Buffer }).hash;
    for (let i = this.#nodes.length - 2; i >= 0; i--)
      h = nodeHash((this.#nodes[i] as { hash: Buffer }).hash, h);
    return h;
  }

  clone(): Frontier {
    const f = new Frontier();
    f.#nodes = [...this.#nodes];
    f.#count = this.#count;
    return f;
  }
}

/**
 * A Merkle tree of `size` leaves whose first `prefix.count` leaves are known only through their
 * frontier (removed by retention) and whose other leaves are given. Computes subtree hashes and
 * RFC 9162 §2.1.3.1 inclusion proofs for the given leaves.
 */
export class PartialTree {
  readonly size: number;
  readonly #prefix: Map<string, Buffer>;
  readonly #prefixCount: number;
  readonly #leaves: readonly Buffer[];

  /** @param leaves hashes of leaves `[prefix.count, size)`. */
  constructor(prefix: Frontier, leaves: readonly Buffer[]) {
    this.#prefixCount = prefix.count;
    this.#leaves = leaves;
    this.size = prefix.count + leaves.length;
    this.#prefix = new Map();
    let offset = 0;
    const hashes = prefix.hashes();
    for (let bit = 2 ** 52, i = 0; bit >= 1; bit /= 2) {
      if (Math.floor(prefix.count / bit) % 2 === 1) {
        this.#prefix.set(`${offset}:${offset + bit}`, Buffer.from(hashes[i++] as string, 'hex'));
        offset += bit;
      }
    }
  }

  /** MTH(D[lo:hi]). */
  hash(lo: number, hi: number): Buffer {
    if (hi - lo === 0) return EMPTY_TREE_ROOT;
    const stored = this.#prefix.get(`${lo}:${hi}`);
    if (stored) return stored;
    if (hi - lo === 1) {
      const leaf = this.#leaves[lo - this.#prefixCount];
      if (!leaf) throw new RangeError(`leaf ${lo} was removed by retention`);
      return leaf;
    }
    const k = splitPoint(hi - lo);
    return nodeHash(this.hash(lo, lo + k), this.hash(lo + k, hi));
  }

  root(): Buffer {
    return this.hash(0, this.size);
  }

  /** The audit path of leaf `index` (RFC 9162 §2.1.3.1), bottom first. */
  inclusionProof(index: number): Buffer[] {
    if (!Number.isInteger(index) || index < this.#prefixCount || index >= this.size) {
      throw new RangeError(`leaf ${index} is not in the tree`);
    }
    const path: Buffer[] = [];
    const walk = (m: number, lo: number, hi: number): void => {
      const n = hi - lo;
      if (n <= 1) return;
      const k = splitPoint(n);
      if (m < k) {
        walk(m, lo, lo + k);
        path.push(this.hash(lo + k, hi));
      } else {
        walk(m - k, lo + k, hi);
        path.push(this.hash(lo, lo + k));
      }
    };
    walk(index, 0, this.size);
    return path;
  }
}

/**
 * Verifies an RFC 9162 §2.1.3.2 inclusion proof: true when `leaf` at `index` in a tree of
 * `size` leaves with root `root` is proven by `path`.
 */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Buffer,
  path: readonly Buffer[],
  root: Buffer,
): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

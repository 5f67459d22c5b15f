import { type FileHandle, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FileSinkDefinition } from '../sink-definition.ts';
import type { OutboundEvent, SinkTransport } from './transport.ts';

/**
 * A JSON-lines file (one formatted event per line), rotated by size: when the next batch would pass
 * `maxBytes`, `path` becomes `path.1`, older files shift up, and at most `maxFiles` rotated files
 * are kept. Each batch is fsynced before it counts as delivered.
 */
export class FileTransport implements SinkTransport {
  readonly confirmDelayMs = 0;
  readonly generation = 0;
  readonly #def: FileSinkDefinition;
  #handle: FileHandle | undefined;
  #size = 0;

  constructor(def: FileSinkDefinition) {
    this.#def = def;
  }

  async #open(): Promise<FileHandle> {
    if (this.#handle) return this.#handle;
    await mkdir(dirname(this.#def.path), { recursive: true, mode: 0o700 });
    this.#handle = await open(this.#def.path, 'a', 0o600);
    this.#size = (await this.#handle.stat()).size;
    return this.#handle;
  }

  async #rotate(): Promise<void> {
    await this.#handle?.close();
    this.#handle = undefined;
    const { path, maxFiles } = this.#def;
    await rm(`${path}.${maxFiles}`, { force: true });
    for (let i = maxFiles - 1; i >= 1; i--) {
      const from = `${path}.${i}`;
      if (await stat(from).catch(() => undefined)) await rename(from, `${path}.${i + 1}`);
    }
    await rename(path, `${path}.1`);
    await this.#syncDir();
  }

  async #syncDir(): Promise<void> {
    const dir = await open(dirname(this.#def.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async send(batch: OutboundEvent[]): Promise<void> {
    const data = Buffer.from(
      `${batch.map((b) => b.formatted.text.replace(/[\r\n]+/g, ' ')).join('\n')}\n`,
      'utf8',
    );
    let handle = await this.#open();
    if (this.#size > 0 && this.#size + data.length > this.#def.maxBytes) {
      await this.#rotate();
      handle = await this.#open();
    }
    try {
      await handle.write(data);
      await handle.sync();
      this.#size += data.length;
    } catch (e) {
      await this.#handle?.close().catch(() => {});
      this.#handle = undefined;
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.#handle?.close();
    this.#handle = undefined;
  }
}

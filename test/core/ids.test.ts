import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isUuid, ManualClock, uuidv7 } from '../../src/core/index.ts';

describe('ids', () => {
  it('makes RFC 9562 version 7 UUIDs that sort in creation order, even within one millisecond', () => {
    const clock = new ManualClock();
    const ids = Array.from({ length: 1000 }, () => uuidv7(clock));
    assert.ok(ids.every(isUuid));
    assert.ok(ids.every((id) => id[14] === '7' && '89ab'.includes(id[19] as string)));
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
    clock.advance(1);
    assert.ok(uuidv7(clock) > (ids.at(-1) as string));
  });
});

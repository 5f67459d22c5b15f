import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditEvent } from '../../src/audit/index.ts';
import {
  headerField,
  octetFrame,
  SYSLOG_LIMITS,
  sdEscape,
  syslogMessage,
  syslogTimestamp,
  wardenSdId,
} from '../../src/export/index.ts';
import { parse5424 } from './support/rsyslog.ts';

const event: AuditEvent = {
  id: '01900000-0000-7000-8000-000000000001',
  time: Date.UTC(2026, 10, 25, 21, 0, 0, 123),
  partition: 'node "a"]\\',
  seq: 42,
  prev_hash: '0'.repeat(64),
  hash: '1'.repeat(64),
  type: 'policy.decision',
  actor: { type: 'agent', id: 'bot]"\\' },
  action: 'tools/call',
  outcome: 'denied',
};

const options = { facility: 13, hostname: 'host', appName: 'warden', procId: '123', enterpriseNumber: 32473 };

describe('RFC 5424 messages', () => {
  it('escapes ", \\ and ] inside SD-PARAM values', () => {
    assert.equal(sdEscape('a"b\\c]d'), 'a\\"b\\\\c\\]d');
    const parsed = parse5424(syslogMessage(event, 'msg', options));
    assert.deepEqual(parsed.sd['warden@32473'], {
      id: event.id,
      partition: event.partition,
      seq: '42',
      type: 'policy.decision',
      outcome: 'denied',
      actor: 'agent:bot]"\\',
      agent: 'bot]"\\',
    });
  });

  it('uses facility × 8 + severity, version 1, the event type as MSGID, and a BOM before MSG', () => {
    const parsed = parse5424(syslogMessage(event, '{"a":1} ü', options));
    assert.equal(parsed.pri, 13 * 8 + 4);
    assert.equal(parsed.version, 1);
    assert.equal(parsed.msgId, 'policy.decision');
    assert.equal(parsed.appName, 'warden');
    assert.ok(parsed.bom);
    assert.equal(parsed.msg, '{"a":1} ü');
  });

  it('writes RFC 3339 timestamps with upper-case T and Z and at most 6 fraction digits', () => {
    const ts = syslogTimestamp(event.time);
    assert.equal(ts, '2026-11-25T21:00:00.123Z');
    assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$/);
  });

  it('cuts header fields to their limits, keeps printable ASCII only, and uses - when empty', () => {
    assert.equal(headerField('x'.repeat(300), SYSLOG_LIMITS.hostname).length, 255);
    assert.equal(headerField('a'.repeat(60), SYSLOG_LIMITS.appName).length, 48);
    assert.equal(headerField('p'.repeat(200), SYSLOG_LIMITS.procId).length, 128);
    assert.equal(headerField('m'.repeat(40), SYSLOG_LIMITS.msgId).length, 32);
    assert.equal(headerField('a b\tü', 48), 'ab');
    assert.equal(headerField('', 48), '-');
    assert.equal(headerField(undefined, 48), '-');
    const long = syslogMessage(event, 'm', {
      ...options,
      hostname: 'h'.repeat(400),
      appName: 'a'.repeat(99),
    });
    const parsed = parse5424(long);
    assert.equal(parsed.hostname.length, 255);
    assert.equal(parsed.appName.length, 48);
  });

  it('names the SD-ID warden@<enterprise number> with a configurable number', () => {
    assert.equal(wardenSdId(32473), 'warden@32473');
    assert.ok(
      'warden@99999' in parse5424(syslogMessage(event, 'm', { ...options, enterpriseNumber: 99999 })).sd,
    );
  });

  it('frames with the length in octets, not characters (RFC 6587 octet counting)', () => {
    const frame = octetFrame('ü€');
    assert.equal(frame.toString('utf8'), '5 ü€');
  });
});

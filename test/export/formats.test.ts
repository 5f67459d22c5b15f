import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import {
  AUDIT_EVENT_TYPES,
  type AuditEvent,
  type AuditEventInput,
  type AuditEventType,
  readEvents,
} from '../../src/audit/index.ts';
import {
  cefExtensionEscape,
  cefHeaderEscape,
  classify,
  OCSF_CLASSES,
  toCef,
  toEcs,
  toOcsf,
} from '../../src/export/index.ts';
import { openLedger } from './support/ledger.ts';

const OCSF_DIR = '/work/shared/ocsf/1.8.0';

function ocsfValidators(): Map<number, ReturnType<Ajv2020['compile']>> {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  // ajv-formats is CommonJS: its plugin is the default export's `default`.
  const addFormats = ((addFormatsModule as any).default ?? addFormatsModule) as (a: Ajv2020) => void;
  addFormats(ajv);
  const byUid = new Map<number, ReturnType<Ajv2020['compile']>>();
  for (const file of readdirSync(OCSF_DIR).filter((f) => f.endsWith('.schema.json'))) {
    const schema = JSON.parse(readFileSync(`${OCSF_DIR}/${file}`, 'utf8'));
    byUid.set(schema.properties.class_uid.const, ajv.compile(schema));
  }
  return byUid;
}

/** Three shapes of each event: an agent acting for a person with every field, a person, a bare system event. */
function variants(type: AuditEventType): AuditEventInput[] {
  return [
    {
      type,
      actor: {
        type: 'agent',
        id: 'agent-42',
        name: 'triage-bot',
        on_behalf_of: { type: 'user', id: 'user-7', name: 'Ada' },
        chain: [
          { type: 'agent', id: 'agent-42' },
          { type: 'user', id: 'user-7' },
        ],
      },
      action: 'tools/call',
      resource: { type: 'agent', id: 'agent-42', name: 'triage-bot' },
      intent: { text: 'triage issue 7', task_id: 'task-1', goal: 'keep backlog clean' },
      decision: {
        effect: 'deny',
        policies: ['p-1'],
        reason: 'outside business hours',
        approval_required: true,
      },
      outcome: 'denied',
      error_code: 'ERR_FORBIDDEN',
      request: { source_ip: '2001:db8::7', user_agent: 'sdk/1', request_id: 'req-1' },
      latency_ms: 3.7,
      details: {
        method: 'DELETE',
        version: 2,
        scopes: ['repo:read', 'issues:write'],
        severity: 'high',
        signal: 'new_tool',
        operation: 'update',
        status: 'disabled',
        nothing: null,
      },
    },
    {
      type,
      actor: { type: 'user', id: 'user-1', name: 'Root Admin', role: 'admin' },
      action: 'users.update',
      resource: { type: 'user', id: 'user-2' },
      outcome: 'success',
      request: { source_ip: '192.0.2.10' },
    },
    { type, actor: { type: 'system', id: 'warden' }, action: type, outcome: 'failure', error_code: 'ERR_X' },
    {
      type,
      actor: { type: 'anonymous', id: 'anonymous' },
      action: 'login',
      outcome: 'failure',
      details: { username: 'bob' },
    },
  ];
}

let cached: Promise<AuditEvent[]> | undefined;

/** Every catalogue type in every variant, recorded once into a real ledger and read back. */
function catalogueEvents(): Promise<AuditEvent[]> {
  cached ??= recordCatalogue();
  return cached;
}

async function recordCatalogue(): Promise<AuditEvent[]> {
  const ledger = await openLedger('sqlite');
  for (const type of Object.keys(AUDIT_EVENT_TYPES) as AuditEventType[]) {
    for (const input of variants(type)) await ledger.auditor.record(input);
  }
  return readEvents(ledger.store.db, 'node-a', 0, 10_000);
}

describe('OCSF 1.8.0', () => {
  it('formats every catalogue event type, from the real ledger, as a valid event of its class', async () => {
    const validators = ocsfValidators();
    assert.equal(validators.get(6003)?.({ class_uid: 6003 }), false, 'the schemas do reject');
    const events = await catalogueEvents();
    assert.equal(events.length, Object.keys(AUDIT_EVENT_TYPES).length * 4);
    const classesSeen = new Set<number>();
    for (const event of events) {
      const ocsf = toOcsf(event);
      const validate = validators.get(ocsf.class_uid as number);
      assert.ok(validate, `no schema for class ${ocsf.class_uid} (${event.type})`);
      assert.ok(validate(ocsf), `${event.type}: ${JSON.stringify(validate.errors, null, 1)}`);
      assert.equal(ocsf.type_uid, (ocsf.class_uid as number) * 100 + (ocsf.activity_id as number));
      assert.equal(ocsf.time, event.time);
      assert.equal((ocsf.metadata as any).uid, event.id);
      assert.equal((ocsf.metadata as any).version, '1.8.0');
      assert.ok(!JSON.stringify(ocsf).includes('null'), `${event.type} carries a null`);
      classesSeen.add(ocsf.class_uid as number);
    }
    assert.deepEqual(
      [...classesSeen].sort(),
      Object.values(OCSF_CLASSES)
        .map((c) => c.uid)
        .sort(),
    );
  });

  it('puts the person in actor.user and the agent in actor.app for delegated calls', async () => {
    const events = await catalogueEvents();
    const call = events.find((e) => e.type === 'tool.call' && e.actor.type === 'agent') as AuditEvent;
    const ocsf = toOcsf(call) as any;
    assert.equal(ocsf.class_uid, 6003);
    assert.deepEqual(ocsf.actor.user, { uid: 'user-7', name: 'Ada', type_id: 1, type: 'User' });
    assert.equal(ocsf.actor.app_uid, 'agent-42');
    assert.equal(ocsf.api.operation, 'tools/call');
    assert.equal(ocsf.src_endpoint.ip, '2001:db8::7');
    assert.equal(ocsf.status_id, 2);
    assert.deepEqual(ocsf.unmapped.warden.intent, call.intent);
  });

  it('maps risk signals to Detection Finding and logins to Authentication', () => {
    const base = { id: 'x', time: 1, partition: 'p', seq: 1, prev_hash: '0', hash: '1', action: 'a' };
    const risk = {
      ...base,
      type: 'risk.signal',
      actor: { type: 'system', id: 'risk' },
      outcome: 'success',
    } as AuditEvent;
    assert.equal(classify(risk).class, 'detection_finding');
    const login = {
      ...base,
      type: 'auth.login_failed',
      actor: { type: 'anonymous', id: 'a' },
      outcome: 'failure',
    } as AuditEvent;
    assert.deepEqual(classify(login), { class: 'authentication', activityId: 1, activityName: 'Logon' });
  });
});

function parseCef(line: string): { header: string[]; ext: Record<string, string> } {
  const header: string[] = [];
  let i = 0;
  let field = '';
  while (header.length < 7) {
    const c = line[i] as string;
    if (c === '\\') {
      field += line[i + 1];
      i += 2;
    } else if (c === '|') {
      header.push(field);
      field = '';
      i++;
    } else {
      field += c;
      i++;
    }
  }
  const ext: Record<string, string> = {};
  const rest = line.slice(i);
  const re = /(?:^| )([A-Za-z0-9_]+)=((?:\\.|[^\\=])*?)(?= [A-Za-z0-9_]+=|$)/g;
  for (const m of rest.matchAll(re)) {
    ext[m[1] as string] = (m[2] as string).replace(/\\(.)/g, (_s, ch: string) =>
      ch === 'n' ? '\n' : ch === 'r' ? '\r' : ch,
    );
  }
  return { header, ext };
}

describe('CEF', () => {
  it('escapes pipes and backslashes in the header and =, \\ and line breaks in extensions', () => {
    assert.equal(cefHeaderEscape('a|b\\c\nd'), 'a\\|b\\\\c d');
    assert.equal(cefExtensionEscape('k=v\\x\ny\r'), 'k\\=v\\\\x\\ny\\r');
    assert.equal(cefExtensionEscape('a|b'), 'a|b');
  });

  it('renders an event that parses back to the same values, with severity 0–10', async () => {
    const events = await catalogueEvents();
    for (const event of events) {
      const line = toCef(event);
      assert.ok(line.startsWith('CEF:0|Warden|Warden|'));
      assert.ok(!/[\r\n]/.test(line), 'one line');
      const { header, ext } = parseCef(line);
      assert.equal(header[4], event.type);
      const severity = Number(header[6]);
      assert.ok(Number.isInteger(severity) && severity >= 0 && severity <= 10);
      assert.equal(ext.externalId, event.id);
      assert.equal(ext.rt, String(event.time));
      if (event.intent?.text) assert.equal(ext.cs2, event.intent.text);
    }
    const tricky = { ...events[0]!, intent: { text: 'a=b \\ c\nd | e' } } as AuditEvent;
    assert.equal(parseCef(toCef(tricky)).ext.cs2, 'a=b \\ c\nd | e');
  });
});

describe('ECS', () => {
  it('puts the person in user.* and the agent in user.effective.*', async () => {
    const events = await catalogueEvents();
    const call = events.find((e) => e.type === 'tool.call' && e.actor.type === 'agent') as AuditEvent;
    const ecs = toEcs(call) as any;
    assert.equal(ecs['@timestamp'], new Date(call.time).toISOString());
    assert.equal(ecs.ecs.version, '8.17.0');
    assert.equal(ecs.event.action, 'tool.call');
    assert.equal(ecs.event.kind, 'event');
    assert.deepEqual(ecs.event.category, ['api']);
    assert.equal(ecs.event.outcome, 'failure');
    assert.equal(ecs.user.id, 'user-7');
    assert.deepEqual(ecs.user.effective, { id: 'agent-42', name: 'triage-bot' });
    for (const event of events) {
      const doc = toEcs(event) as any;
      assert.ok(doc.event.kind && doc.event.category.length && doc.event.type.length && doc.event.outcome);
      assert.ok(!JSON.stringify(doc).includes('null'));
    }
    const risk = events.find((e) => e.type === 'risk.signal') as AuditEvent;
    assert.equal((toEcs(risk) as any).event.kind, 'alert');
  });
});

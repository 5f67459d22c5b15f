import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { BACKENDS, freshDatabase } from '../support/databases.ts';
import { freePort } from '../support/process.ts';
import {
  type ApprovalsNode,
  events,
  ManualClock,
  newKeyring,
  openNode,
  seedWorld,
  type World,
} from './harness.ts';

const DATABASES = { sqlite: await freshDatabase('sqlite'), postgres: await freshDatabase('postgres') };
const WEBHOOK_SECRET = 'whsec-0123456789abcdef0123456789abcdef';
const SMTP_PASSWORD = 'smtp-pa55word-not-in-logs';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}
interface Mail {
  from: string;
  to: string[];
  raw: string;
}

/** A real HTTP receiver that verifies the webhook signature the way a customer's would. */
function verifySignature(header: string | undefined, body: string, secret: string, now: number): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const t = Number(m[1]);
  if (Math.abs(now / 1000 - t) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(m[2] as string, 'hex'));
}

/** Undoes quoted-printable soft line breaks and escapes for plain assertions. */
function unQuote(raw: string): string {
  return raw
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

const received: Received[] = [];
const mails: Mail[] = [];
const http = createServer((req, res) => {
  let body = '';
  req.on('data', (d: Buffer) => {
    body += d.toString();
  });
  req.on('end', () => {
    received.push({ path: req.url ?? '', headers: req.headers, body });
    res.writeHead(req.url === '/broken' ? 500 : 200).end('ok');
  });
});
http.listen(0, '127.0.0.1');
await once(http, 'listening');
const httpUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
after(() => http.close());

const smtp = new SMTPServer({
  secure: false,
  disabledCommands: ['STARTTLS'],
  allowInsecureAuth: true,
  authOptional: false,
  logger: false,
  onAuth(auth, _session, cb) {
    if (auth.username === 'warden' && auth.password === SMTP_PASSWORD) cb(null, { user: 'warden' });
    else cb(new Error('bad credentials'));
  },
  onData(stream, session, cb) {
    let raw = '';
    stream.on('data', (d: Buffer) => {
      raw += d.toString();
    });
    stream.on('end', () => {
      mails.push({
        from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
        to: session.envelope.rcptTo.map((r) => r.address),
        raw,
      });
      cb();
    });
  },
});
const smtpPort = await freePort();
smtp.listen(smtpPort, '127.0.0.1');
await once(smtp.server, 'listening');
after(() => new Promise<void>((r) => smtp.close(() => r())));

for (const backend of BACKENDS) {
  describe(`approval notifications (${backend})`, () => {
    const clock = new ManualClock(Date.now());
    let node: ApprovalsNode;
    let w: World;

    before(async () => {
      node = await openNode({ ...DATABASES[backend], keyring: newKeyring(), clock });
      w = await seedWorld(node.identity, node.approvals);
      const channels = node.approvals.channels;
      await channels.create(
        { name: 'siem-hook', kind: 'webhook', url: `${httpUrl}/hook`, secret: WEBHOOK_SECRET },
        w.admin,
      );
      await channels.create(
        { name: 'slack', kind: 'slack', webhook_url: `${httpUrl}/slack/T000/B000/XXXX` },
        w.admin,
      );
      await channels.create(
        {
          name: 'mail',
          kind: 'email',
          host: '127.0.0.1',
          port: smtpPort,
          from: 'warden@example.test',
          to: ['secops@example.test'],
          username: 'warden',
          password: SMTP_PASSWORD,
        },
        w.admin,
      );
      await channels.create(
        { name: 'broken', kind: 'webhook', url: `${httpUrl}/broken`, secret: WEBHOOK_SECRET },
        w.admin,
      );
    });
    after(async () => {
      await node?.close();
    });

    it('delivers a request to every channel, each linking to the approval page', async () => {
      const { request } = await node.approvals.request({
        agent_id: w.agentId,
        user_id: w.alice.id,
        intent: 'pay supplier',
        tool: 'payments.send',
        arguments: { amount: 900, memo: '<script>alert(1)</script>' },
        binding_message: 'Pay 900 EUR to ACME',
      });
      await node.approvals.settled();

      const hook = received.find((r) => r.path === '/hook' && r.body.includes(request.id));
      assert.ok(hook, 'the webhook was delivered');
      assert.ok(
        verifySignature(hook.headers['warden-signature'] as string, hook.body, WEBHOOK_SECRET, Date.now()),
      );
      assert.equal(
        verifySignature(
          hook.headers['warden-signature'] as string,
          `${hook.body} `,
          WEBHOOK_SECRET,
          Date.now(),
        ),
        false,
      );
      assert.equal(
        verifySignature(
          hook.headers['warden-signature'] as string,
          hook.body,
          `${WEBHOOK_SECRET}x`,
          Date.now(),
        ),
        false,
      );
      const payload = JSON.parse(hook.body);
      assert.equal(payload.type, 'approval.requested');
      assert.equal(payload.approval.id, request.id);
      assert.equal(payload.approval.url, `https://warden.example/approvals/${request.id}`);
      assert.deepEqual(payload.approval.authorization_details[0].arguments, {
        amount: 900,
        memo: '<script>alert(1)</script>',
      });

      const slack = received.find((r) => r.path.startsWith('/slack/') && r.body.includes(request.id));
      assert.ok(slack, 'the Slack webhook was delivered');
      const msg = JSON.parse(slack.body);
      assert.equal(typeof msg.text, 'string');
      assert.match(msg.text, /Pay 900 EUR to ACME/);
      assert.ok(Array.isArray(msg.blocks));
      for (const block of msg.blocks) assert.equal(typeof block.type, 'string');
      const button = msg.blocks.find((b: { type: string }) => b.type === 'actions').elements[0];
      assert.equal(button.type, 'button');
      assert.equal(button.url, request.url);
      assert.ok(!slack.body.includes('<script>'), 'Slack mrkdwn control characters are escaped');
      assert.ok(slack.body.includes('&lt;script&gt;'));

      const mail = mails.find((m) => unQuote(m.raw).includes(request.id)) as Mail;
      assert.ok(mail, 'the mail was received');
      assert.equal(mail.from, 'warden@example.test');
      // The fixed recipient and the eligible approver (bob, finance); never the agent's owner.
      assert.deepEqual(mail.to.sort(), ['bob@example.test', 'secops@example.test']);
      const text = unQuote(mail.raw);
      assert.match(text, /Subject: Approval needed: Pay 900 EUR to ACME/);
      assert.ok(text.includes(request.url), 'the mail links to the approval page');
      assert.ok(text.includes('payments.send'));
    });

    it('tells a user about a broken connected account: signed webhook, escaped Slack text, mail to the user', async () => {
      const delivered = await node.approvals.channels.notifyUser({
        type: 'vault.account_broken',
        user_id: w.alice.id,
        title: 'Reconnect your github account',
        text: 'Warden can no longer use your github account <b>now</b>.',
        details: { account_id: `acc-${w.alice.id}`, connection: 'github', reason: 'invalid_grant' },
      });
      assert.deepEqual(delivered.sort(), ['mail', 'siem-hook', 'slack']);
      const hook = received.find((r) => r.path === '/hook' && r.body.includes(`acc-${w.alice.id}`));
      assert.ok(hook, 'the webhook was delivered');
      assert.ok(
        verifySignature(hook.headers['warden-signature'] as string, hook.body, WEBHOOK_SECRET, Date.now()),
      );
      assert.deepEqual(JSON.parse(hook.body), {
        type: 'vault.account_broken',
        user_id: w.alice.id,
        title: 'Reconnect your github account',
        details: { account_id: `acc-${w.alice.id}`, connection: 'github', reason: 'invalid_grant' },
      });
      const slack = received.find((r) => r.path.startsWith('/slack/') && r.body.includes('github account'));
      assert.ok(slack, 'the Slack webhook was delivered');
      assert.ok(JSON.parse(slack.body).text.includes('&lt;b&gt;now&lt;/b&gt;'));
      const mail = mails.find((m) => unQuote(m.raw).includes('Reconnect your github account')) as Mail;
      assert.ok(mail, 'the mail was received');
      // The fixed recipient and the user concerned, nobody else.
      assert.deepEqual(mail.to.sort(), ['alice@example.test', 'secops@example.test']);
    });

    it('keeps channel secrets sealed: not in views, columns or logs; a failing channel is logged without them', async () => {
      const views = await node.approvals.channels.list();
      assert.deepEqual(views.map((v) => v.name).sort(), ['broken', 'mail', 'siem-hook', 'slack']);
      const dump = JSON.stringify(views);
      const rows = JSON.stringify(await node.store.db.selectFrom('approval_channels').selectAll().execute());
      const logs = node.logs.join('');
      for (const secret of [WEBHOOK_SECRET, SMTP_PASSWORD, '/slack/T000/B000/XXXX']) {
        assert.ok(!dump.includes(secret), 'not in a view');
        assert.ok(!rows.includes(secret), 'not in a column');
        assert.ok(!logs.includes(secret), 'not in a log line');
      }
      assert.match(logs, /"channel":"broken".*notification not delivered/);
      assert.ok(views.every((v) => v.has_secret));
      const changes = await events(node.store, 'node-a', 'approval.settings_changed');
      assert.deepEqual(
        changes.filter((e) => e.action === 'approvals.channels.create').map((e) => e.resource?.name),
        ['siem-hook', 'slack', 'mail', 'broken'],
      );
      assert.ok(!JSON.stringify(changes).includes(WEBHOOK_SECRET));
    });
  });
}

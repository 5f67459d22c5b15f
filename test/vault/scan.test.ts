import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { WardenError } from '../../src/core/index.ts';
import { scanForSecrets } from '../../src/vault/index.ts';
import { tempDir } from '../support/databases.ts';

// Assembled at run time so this file itself holds no credential-shaped literal.
const GITHUB = ['ghp', '_wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx'].join('');
const SLACK = ['xoxb', '-123456789012-1234567890123-abcdefghijABCDEFGHIJklmn'].join('');

describe('scanForSecrets', () => {
  it('finds hard-coded credentials with file, line and rule, and names the vault command for each', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'src'));
    mkdirSync(join(dir, 'node_modules', 'dep'), { recursive: true });
    writeFileSync(join(dir, 'src', 'agent.js'), `import x from 'y';\n\nconst token = "${GITHUB}";\n`);
    writeFileSync(join(dir, '.env'), `PORT=8080\nSLACK_TOKEN=${SLACK}\n`);
    writeFileSync(join(dir, 'src', 'clean.ts'), 'export const answer = 42;\n');
    writeFileSync(join(dir, 'node_modules', 'dep', 'index.js'), `module.exports = "${GITHUB}";\n`);
    writeFileSync(join(dir, 'logo.bin'), Buffer.from([0, 1, 2, 3, 0, 255]));

    const result = await scanForSecrets(dir);
    assert.equal(result.filesScanned, 3, 'node_modules and binary files are skipped');
    assert.deepEqual(
      result.findings.map((f) => [f.file, f.line, f.rule, f.messageId]),
      [
        ['.env', 2, '@secretlint/secretlint-rule-slack', 'SLACK_TOKEN'],
        [join('src', 'agent.js'), 3, '@secretlint/secretlint-rule-github', 'GITHUB_TOKEN'],
      ],
    );
    const github = result.findings[1];
    assert.equal(github?.column, 16);
    assert.equal(github?.command, 'warden secrets put github-agent-js --from-file github-agent-js.secret');
    const text = JSON.stringify(result);
    assert.ok(!text.includes(GITHUB) && !text.includes(SLACK), 'the result never carries the secret');
  });

  it('scans a single file and reports nothing for clean code', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'ok.py'), 'print("hello")\n');
    assert.deepEqual((await scanForSecrets(join(dir, 'ok.py'))).findings, []);
    writeFileSync(join(dir, 'bad.py'), `KEY = "${GITHUB}"\n`);
    const r = await scanForSecrets(join(dir, 'bad.py'));
    assert.deepEqual(
      r.findings.map((f) => [f.file, f.line]),
      [['bad.py', 1]],
    );
  });

  it('refuses a path that does not exist', async () => {
    await assert.rejects(
      scanForSecrets('/nonexistent/warden-scan'),
      (e) => e instanceof WardenError && e.code === 'ERR_SCAN_PATH',
    );
  });
});

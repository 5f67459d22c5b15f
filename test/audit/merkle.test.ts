import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { Frontier, leafHash, PartialTree, verifyInclusion } from '../../src/audit/merkle.ts';
import {
  checkpointText,
  noteVerifier,
  openNote,
  parseCheckpointText,
  parseNoteVerifier,
  signNote,
} from '../../src/audit/signed-note.ts';

// The RFC 6962 / RFC 9162 reference test vectors (certificate-transparency merkle_tree_test).
const LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
];
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

describe('RFC 9162 Merkle tree', () => {
  it('computes the reference roots for trees of 0 to 8 leaves', () => {
    const f = new Frontier();
    assert.equal(
      f.root().toString('hex'),
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    LEAVES.forEach((hex, i) => {
      f.push(leafHash(Buffer.from(hex, 'hex')));
      assert.equal(f.root().toString('hex'), ROOTS[i]);
    });
  });

  it('round-trips inclusion proofs for every leaf of trees up to 33 leaves, with any retained prefix', () => {
    for (let n = 1; n <= 33; n++) {
      const leaves = Array.from({ length: n }, (_, i) => leafHash(`leaf ${i}`));
      const full = new Frontier();
      for (const l of leaves) full.push(l);
      for (const k of [0, Math.floor(n / 2), n - 1]) {
        const prefix = new Frontier();
        for (const l of leaves.slice(0, k)) prefix.push(l);
        const tree = new PartialTree(Frontier.from(k, prefix.hashes()), leaves.slice(k));
        assert.ok(tree.root().equals(full.root()), `root of ${n} with ${k} pruned`);
        for (let i = k; i < n; i++) {
          const path = tree.inclusionProof(i);
          assert.ok(verifyInclusion(i, n, leaves[i]!, path, full.root()));
          if (n > 1) {
            assert.ok(!verifyInclusion(i, n, leaves[(i + 1) % n]!, path, full.root()), 'wrong leaf refused');
          }
        }
      }
    }
  });
});

describe('C2SP signed-note checkpoints', () => {
  it('signs and opens a checkpoint, and ignores or refuses other keys', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const v = noteVerifier('warden.audit', publicKey);
    assert.deepEqual(parseNoteVerifier(v.text).keyId, v.keyId);
    const root = Buffer.alloc(32, 1);
    const text = checkpointText({ origin: 'warden.audit/node-a', size: 42, root });
    assert.equal(text, `warden.audit/node-a\n42\n${root.toString('base64')}\n`);
    const note = signNote(text, v, privateKey);
    assert.match(note, /\n\n\u2014 warden\.audit [A-Za-z0-9+/]+=*\n$/);
    assert.equal(openNote(note, v), text);
    assert.deepEqual(parseCheckpointText(text), { origin: 'warden.audit/node-a', size: 42, root });
    const other = noteVerifier('warden.audit', generateKeyPairSync('ed25519').publicKey);
    assert.equal(openNote(note, other), undefined);
    assert.equal(openNote(note.replace('\n42\n', '\n43\n'), v), undefined);
    // A co-signature from an unknown key is ignored, not an error.
    const cosigned = `${note}\u2014 witness.example ${Buffer.alloc(68, 3).toString('base64')}\n`;
    assert.equal(openNote(cosigned, v), text);
    assert.throws(() => parseNoteVerifier('nonsense'), { code: 'ERR_AUDIT_KEY' });
  });
});

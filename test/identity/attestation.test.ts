import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { attestationDigest, attestationRefusal, attestedClaimsOf } from '../../src/identity/index.ts';

const IMAGE = `sha256:${'0f'.repeat(32)}`;
const open = { required: false, image_digests: [], models: [] };

describe('attested claims against a template requirement', () => {
  it('allows anything when the allow-lists are empty', () => {
    assert.equal(attestationRefusal(open, {}), undefined);
  });

  it('compares software versions numerically, part by part', () => {
    const req = { ...open, min_software_version: '1.9.0' };
    assert.equal(attestationRefusal(req, { software_version: '1.10.0' }), undefined);
    assert.equal(attestationRefusal(req, { software_version: 'v1.9' }), undefined);
    assert.equal(attestationRefusal(req, { software_version: '1.9.0-rc1' }), undefined);
    assert.equal(
      attestationRefusal(req, { software_version: '1.8.99' }),
      'attestation_software_version_too_old',
    );
    assert.equal(
      attestationRefusal(req, { software_version: 'latest' }),
      'attestation_software_version_too_old',
    );
    assert.equal(attestationRefusal(req, {}), 'attestation_software_version_too_old');
  });

  it('requires a listed image digest and model when the template lists any', () => {
    const req = { ...open, image_digests: [IMAGE], models: ['m1'] };
    assert.equal(attestationRefusal(req, { image_digest: IMAGE, model: 'm1' }), undefined);
    assert.equal(attestationRefusal(req, { model: 'm1' }), 'attestation_image_digest_not_allowed');
    assert.equal(
      attestationRefusal(req, { image_digest: IMAGE, model: 'm2' }),
      'attestation_model_not_allowed',
    );
  });

  it('reads only the attested claims, refusing malformed ones', () => {
    assert.deepEqual(attestedClaimsOf({ sub: 'x', model: 'm1', extra: 1 }), { model: 'm1' });
    assert.equal(attestedClaimsOf({ image_digest: 'sha256:ABC' }), undefined);
    assert.equal(attestedClaimsOf({ software_version: 7 }), undefined);
  });

  it('digests the canonical JSON of the claims, independent of member order', () => {
    const a = attestationDigest({ model: 'm1', image_digest: IMAGE });
    const b = attestationDigest({ image_digest: IMAGE, model: 'm1' });
    assert.equal(a, b);
    const expected = createHash('sha256')
      .update(`{"image_digest":"${IMAGE}","model":"m1"}`)
      .digest('base64url');
    assert.equal(a, expected);
  });
});

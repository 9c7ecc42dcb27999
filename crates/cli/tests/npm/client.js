// Drives a running Whirl with the published `openwhisk` npm client, as an existing OpenWhisk user
// would. Env: WHIRL_APIHOST, WHIRL_AUTH. Exits non-zero (with a message) on the first mismatch.
const assert = require('node:assert/strict');
const openwhisk = require('openwhisk');

async function main() {
  const ow = openwhisk({ apihost: process.env.WHIRL_APIHOST, api_key: process.env.WHIRL_AUTH });
  const name = 'npm-hello';
  const code = 'function main(p) { console.log("npm says", p.who); return { hi: p.who }; }';

  const created = await ow.actions.create({ name, action: code, kind: 'nodejs:20', overwrite: true });
  assert.equal(created.name, name);
  assert.equal(created.exec.kind, 'nodejs:20');

  const got = await ow.actions.get({ name });
  assert.equal(got.exec.code, code);

  const act = await ow.actions.invoke({ name, blocking: true, params: { who: 'npm' } });
  assert.equal(act.response.success, true);
  assert.deepEqual(act.response.result, { hi: 'npm' });
  const id = act.activationId;

  const result = await ow.actions.invoke({ name, blocking: true, result: true, params: { who: 'r' } });
  assert.deepEqual(result, { hi: 'r' });

  const rec = await ow.activations.get({ name: id });
  assert.equal(rec.activationId, id);
  const logs = await ow.activations.logs({ name: id });
  assert.ok(logs.logs.some((l) => l.includes('npm says npm')), JSON.stringify(logs));
  const res = await ow.activations.result({ name: id });
  assert.deepEqual(res.result, { hi: 'npm' });

  const list = await ow.activations.list({ name, limit: 5 });
  assert.ok(list.some((a) => a.activationId === id));
  const actions = await ow.actions.list();
  assert.ok(actions.some((a) => a.name === name));

  await ow.actions.delete({ name });
  await assert.rejects(ow.actions.get({ name }), (e) => e.statusCode === 404);
  console.log('npm client: all checks passed');
}

main().catch((e) => {
  console.error('npm client test failed:', e && (e.stack || e));
  process.exit(1);
});

// Drives every entity type of a running Whirl with the published `openwhisk` npm client:
// catalog actions by full name, packages and bindings, triggers fired through rules, rules
// (create, disable, update, delete), sequences of catalog actions, and activations.
// Env: WHIRL_APIHOST, WHIRL_AUTH. Exits non-zero (with a message) on the first mismatch.
const assert = require('node:assert/strict');
const openwhisk = require('openwhisk');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(ow, id) {
  for (let i = 0; i < 200; i++) {
    try {
      return await ow.activations.get({ name: id });
    } catch (e) {
      if (e.statusCode !== 404) throw e;
    }
    await sleep(50);
  }
  throw new Error(`activation ${id} never arrived`);
}

async function main() {
  const ow = openwhisk({ apihost: process.env.WHIRL_APIHOST, api_key: process.env.WHIRL_AUTH });
  const echo = 'function main(p) { console.log("echo", JSON.stringify(p)); return p; }';

  // The catalog, fully qualified.
  const hi = await ow.actions.invoke({ name: '/whisk.system/utils/echo', blocking: true, result: true, params: { hi: 1 } });
  assert.deepEqual(hi, { hi: 1 });
  const utils = await ow.packages.get({ name: '/whisk.system/utils' });
  assert.ok(utils.actions.some((a) => a.name === 'sort'), JSON.stringify(utils));

  // Packages and actions in them.
  await ow.packages.create({ name: 'npmpkg', overwrite: true, package: { parameters: [{ key: 'p', value: 1 }] } });
  await ow.actions.create({ name: 'npmpkg/echo', action: echo, kind: 'nodejs:20', overwrite: true });
  const pkg = await ow.packages.get({ name: 'npmpkg' });
  assert.deepEqual(pkg.actions.map((a) => a.name), ['echo']);
  const fromPkg = await ow.actions.invoke({ name: 'npmpkg/echo', blocking: true, result: true, params: { q: 2 } });
  assert.deepEqual(fromPkg, { p: 1, q: 2 });

  // A binding to the catalog with its own parameters.
  await ow.packages.create({
    name: 'npmbind', overwrite: true,
    package: { binding: { namespace: 'whisk.system', name: 'utils' }, parameters: [{ key: 'separator', value: ',' }] },
  });
  const split = await ow.actions.invoke({ name: 'npmbind/split', blocking: true, result: true, params: { payload: 'b,a' } });
  assert.deepEqual(split.lines, ['b', 'a']);
  const pkgs = await ow.packages.list();
  for (const n of ['npmpkg', 'npmbind']) assert.ok(pkgs.some((p) => p.name === n), n);

  // A sequence of catalog actions.
  await ow.actions.create({
    name: 'npmseq', overwrite: true,
    sequence: ['/whisk.system/utils/split', '/whisk.system/utils/sort', '/whisk.system/utils/head'],
  });
  // Each component sees only its predecessor's result: head takes its default of one line.
  const head = await ow.actions.invoke({ name: 'npmseq', blocking: true, result: true, params: { payload: 'c\nb\na' } });
  assert.deepEqual(head, { lines: ['a'], num: 1 });

  // Triggers and rules.
  await ow.actions.create({ name: 'npmecho', action: echo, kind: 'nodejs:20', overwrite: true });
  await ow.triggers.create({ name: 'npmtrig', overwrite: true, trigger: { parameters: [{ key: 'from', value: 'trigger' }] } });
  const rule = await ow.rules.create({ name: 'npmrule', trigger: 'npmtrig', action: 'npmecho', overwrite: true });
  assert.equal(rule.status, 'active');
  const fired = await ow.triggers.invoke({ name: 'npmtrig', params: { x: 1 } });
  const trigAct = await waitFor(ow, fired.activationId);
  const ruleResult = JSON.parse(trigAct.logs[0]);
  assert.equal(ruleResult.success, true, JSON.stringify(ruleResult));
  const actionAct = await waitFor(ow, ruleResult.activationId);
  assert.deepEqual(actionAct.response.result, { from: 'trigger', x: 1 });
  assert.equal(actionAct.cause, fired.activationId);

  await ow.rules.disable({ name: 'npmrule' });
  assert.equal((await ow.rules.get({ name: 'npmrule' })).status, 'inactive');
  await ow.triggers.invoke({ name: 'npmtrig', params: {} }); // 204: no active rule
  const updated = await ow.rules.update({ name: 'npmrule', trigger: 'npmtrig', action: '/whisk.system/utils/echo' });
  assert.equal(updated.action.name, 'echo');
  assert.equal(updated.action.path, 'whisk.system/utils');
  await ow.rules.enable({ name: 'npmrule' });
  const fired2 = await ow.triggers.invoke({ name: 'npmtrig', params: { y: 2 } });
  const trigAct2 = await waitFor(ow, fired2.activationId);
  const second = await waitFor(ow, JSON.parse(trigAct2.logs[0]).activationId);
  assert.deepEqual(second.response.result, { from: 'trigger', y: 2 });
  const rules = await ow.rules.list();
  assert.ok(rules.some((r) => r.name === 'npmrule'));
  await ow.rules.delete({ name: 'npmrule' });
  await assert.rejects(ow.rules.get({ name: 'npmrule' }), (e) => e.statusCode === 404);
  const triggers = await ow.triggers.list();
  assert.ok(triggers.some((t) => t.name === 'npmtrig'));
  await ow.triggers.delete({ name: 'npmtrig' });

  // Activations: list, get, logs, result.
  const list = await ow.activations.list({ name: 'npmecho', limit: 5 });
  assert.ok(list.some((a) => a.activationId === actionAct.activationId), JSON.stringify(list));
  const logs = await ow.activations.logs({ name: actionAct.activationId });
  assert.ok(logs.logs.some((l) => l.includes('echo')), JSON.stringify(logs));
  const res = await ow.activations.result({ name: actionAct.activationId });
  assert.deepEqual(res.result, { from: 'trigger', x: 1 });

  // Clean up packages (a package with actions needs them gone first).
  await ow.actions.delete({ name: 'npmpkg/echo' });
  await ow.packages.delete({ name: 'npmpkg' });
  await ow.packages.delete({ name: 'npmbind' });
  await ow.actions.delete({ name: 'npmseq' });
  console.log('npm entities: all checks passed');
}

main().catch((e) => {
  console.error('npm entities test failed:', e && (e.stack || e));
  process.exit(1);
});

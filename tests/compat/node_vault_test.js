// Compatibility check with an unmodified Vault client library (node-vault, from npm) against a
// real Ward server. Usage: node node_vault_test.js dev|fresh
//   dev:   WARD_ADDR, WARD_CACERT, WARD_TOKEN point at an unsealed dev server.
//   fresh: WARD_ADDR, WARD_CACERT point at an uninitialised server; the test inits and unseals.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');

function client(token) {
  return require('node-vault')({
    apiVersion: 'v1',
    endpoint: process.env.WARD_ADDR,
    token,
    requestOptions: { ca: fs.readFileSync(process.env.WARD_CACERT) },
  });
}

async function expectStatus(promise, code) {
  try {
    await promise;
  } catch (err) {
    assert.equal(err.response && err.response.statusCode, code, String(err));
    return err;
  }
  assert.fail(`expected HTTP ${code}`);
}

async function dev() {
  const vault = client(process.env.WARD_TOKEN);
  const health = await vault.health();
  assert.equal(health.initialized, true);
  assert.equal(health.sealed, false);
  const status = await vault.status();
  assert.equal(status.sealed, false);

  await vault.write('secret/data/compat/app', { data: { user: 'app', password: 'p4ss' } });
  const read = await vault.read('secret/data/compat/app');
  assert.equal(read.data.data.password, 'p4ss');
  assert.equal(read.data.metadata.version, 1);
  const list = await vault.list('secret/metadata/compat');
  assert.deepEqual(list.data.keys, ['app']);
  await expectStatus(vault.read('secret/data/compat/missing'), 404);

  const mounts = await vault.mounts();
  assert.equal(mounts.data['secret/'].type, 'kv');

  const created = await vault.tokenCreate({ policies: ['default'], ttl: '1h' });
  // node-vault adopts a token it creates as the client's own; go back to the root token.
  assert.equal(vault.token, created.auth.client_token);
  vault.token = process.env.WARD_TOKEN;
  assert.ok(created.auth.client_token.length > 10);
  const other = client(created.auth.client_token);
  const self = await other.tokenLookupSelf();
  assert.equal(self.data.id, created.auth.client_token);
  assert.deepEqual(self.data.policies, ['default']);
  await expectStatus(other.read('secret/data/compat/app'), 403);
  const renewed = await other.tokenRenewSelf({ increment: '2h' });
  assert.ok(renewed.auth.lease_duration > 3600);
  await vault.tokenRevoke({ token: created.auth.client_token });
  await expectStatus(other.tokenLookupSelf(), 403);

  await accessControl(vault);

  await vault.delete('secret/metadata/compat/app');
  await expectStatus(vault.read('secret/data/compat/app'), 404);
}

// Policies, AppRole login and a file audit device, through the library's own helpers.
async function accessControl(vault) {
  const rules = 'path "secret/data/compat/*" { capabilities = ["read"] }';
  await vault.addPolicy({ name: 'compat-reader', rules });
  const policy = await vault.getPolicy({ name: 'compat-reader' });
  assert.equal(policy.rules, rules);
  const policies = await vault.policies();
  assert.ok(policies.policies.includes('compat-reader'), JSON.stringify(policies));

  await vault.enableAuth({ mount_point: 'approle', type: 'approle', description: 'compat' });
  const auths = await vault.auths();
  assert.equal(auths.data['approle/'].type, 'approle');
  await vault.addApproleRole({ role_name: 'compat-app', policies: 'compat-reader', token_ttl: 1200 });
  const roleId = (await vault.getApproleRoleId({ role_name: 'compat-app' })).data.role_id;
  const secretId = (await vault.getApproleRoleSecret({ role_name: 'compat-app' })).data.secret_id;
  const app = client('');
  const login = await app.approleLogin({ role_id: roleId, secret_id: secretId });
  assert.deepEqual(login.auth.token_policies, ['compat-reader', 'default']);
  assert.equal(app.token, login.auth.client_token);  // the library adopts the login token
  assert.equal((await app.read('secret/data/compat/app')).data.data.user, 'app');
  await expectStatus(app.write('secret/data/compat/app', { data: { user: 'x' } }), 403);
  await expectStatus(client('').approleLogin({ role_id: roleId, secret_id: 'wrong' }), 400);

  const auditFile = `${process.env.COMPAT_WORK_DIR}/audit.log`;
  await vault.enableAudit({ name: 'compat-file', type: 'file', options: { file_path: auditFile } });
  const audits = await vault.audits();
  assert.equal(audits.data['compat-file/'].type, 'file');
  await vault.read('secret/data/compat/app');
  await vault.disableAudit({ name: 'compat-file' });
  const log = fs.readFileSync(auditFile, 'utf8');
  assert.ok(log.includes('secret/data/compat/app'));
  assert.ok(!log.includes('p4ss'), 'plaintext secret in the audit log');
}

async function fresh() {
  const vault = client('');
  assert.equal((await vault.initialized()).initialized, false);
  const init = await vault.init({ secret_shares: 3, secret_threshold: 2 });
  assert.equal(init.keys.length, 3);
  let status = await vault.unseal({ key: init.keys[0] });
  assert.equal(status.sealed, true);
  assert.equal(status.progress, 1);
  status = await vault.unseal({ key: init.keys_base64[1] });
  assert.equal(status.sealed, false);
  const root = client(init.root_token);
  await root.write('secret/data/after-init', { data: { ok: 'yes' } });
  assert.equal((await root.read('secret/data/after-init')).data.data.ok, 'yes');
  await root.seal();
  assert.equal((await vault.status()).sealed, true);
  await expectStatus(root.read('secret/data/after-init'), 503);
}

const mode = process.argv[2];
(mode === 'fresh' ? fresh() : dev()).then(
  () => console.log(`node-vault ${mode}: ok`),
  (err) => {
    console.error(err);
    process.exit(1);
  });

#!/usr/bin/env node
// A sync-family lease-v1 daemon on Node.js 20's standard library, written from protocol/ alone.
// Clause ids (L1.*) are those of protocol/lease-v1.md.
//
//   SYNCLEASE_HOME=<root> [SYNCLEASE_PORT_RANGE=LO-HI] node daemon.js [--heartbeat S] [--ttl S]
//       [--idle S] [--package-version V] [--managed] [--stop-renewing-after S]
//
// --managed: someone else (an `ensure`) records the singleton; this daemon does not record itself
// (L1.SINGLETON.WRITER). --stop-renewing-after S is a test switch: after S seconds the lease is no
// longer renewed (it goes stale) while health, control, supersession and idleness keep working.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { wireTime, atomicWrite, readRecord, takeLock, processStart } = require('./records');

const FAMILY = 'sync';
const RANGE = [9400, 9449];

function fail(message, code) {
  process.stderr.write(`node-daemon: ${message}\n`);
  process.exit(code);
}

function options(argv) {
  const opts = { heartbeat: 2, ttl: null, idle: 900, version: '0.1.0', stopRenewingAfter: null, managed: false };
  const names = { '--heartbeat': 'heartbeat', '--ttl': 'ttl', '--idle': 'idle', '--stop-renewing-after': 'stopRenewingAfter' };
  for (let i = 0; i < argv.length; i += 2) {
    const value = argv[i + 1];
    if (argv[i] === '--managed') { opts.managed = true; i -= 1; continue; }
    if (argv[i] === '--package-version' && value) opts.version = value;
    else if (names[argv[i]] && Number(value) > 0) opts[names[argv[i]]] = Number(value);
    else fail(`bad argument ${argv[i]}; see the usage at the top of daemon.js`, 2);
  }
  opts.ttl = opts.ttl || Math.max(10, 3 * opts.heartbeat); // L1.LEASE.TTL
  return opts;
}

function portRange() {
  const raw = (process.env.SYNCLEASE_PORT_RANGE || '').trim();
  if (!raw) return RANGE;
  const [lo, hi] = raw.split('-').map(Number);
  if (!(lo >= RANGE[0] && hi <= RANGE[1] && lo <= hi)) fail(`SYNCLEASE_PORT_RANGE=${raw} is outside 9400-9449`, 2);
  return [lo, hi];
}

// L1.ROOT.SAFE: refuse a symlinked, foreign, group/world-writable or missing root.
function daemonRoot() {
  const given = process.env.SYNCLEASE_HOME;
  if (!given) fail('SYNCLEASE_HOME is not set; set it to the daemon root', 2);
  let st;
  try {
    st = fs.lstatSync(given);
  } catch (err) {
    fail(`daemon root ${given} does not exist; create it with mode 0700`, 2);
  }
  if (st.isSymbolicLink() || !st.isDirectory()) fail(`daemon root ${given} is not a real directory`, 2);
  if (st.uid !== process.getuid() || (st.mode & 0o022) !== 0) fail(`daemon root ${given}: chmod 700 it`, 2);
  const root = fs.realpathSync(given);
  fs.mkdirSync(path.join(root, 'leases', FAMILY), { recursive: true, mode: 0o700 });
  return root;
}

function listen(server, [lo, hi]) {
  return new Promise((resolve) => {
    const attempt = (port) => {
      if (port > hi) return resolve(null);
      server.once('error', () => attempt(port + 1));
      // The port actually bound, from the socket: a callback of an earlier, failed attempt may also fire.
      server.once('listening', () => {
        server.removeAllListeners('error');
        server.removeAllListeners('listening');
        resolve(server.address().port);
      });
      server.listen({ port, host: '127.0.0.1', exclusive: true });
    };
    attempt(lo);
  });
}

async function main() {
  process.umask(0o077);
  const opts = options(process.argv.slice(2));
  const root = daemonRoot();
  const leaseDir = path.join(root, 'leases', FAMILY);
  const instanceId = crypto.randomBytes(12).toString('hex'); // L1.DAEMON.IDS
  const token = crypto.randomBytes(32).toString('base64url');
  const leasePath = path.join(leaseDir, `${instanceId}.json`);
  const lockPath = path.join(leaseDir, `${instanceId}.lock`);
  const singletonPath = path.join(root, `${FAMILY}.singleton.json`);
  const singletonLock = path.join(root, `${FAMILY}.singleton.lock`);
  const start = processStart();
  const startedAt = wireTime(Date.now());
  const state = { phase: 'serving', inFlight: false, lastActivity: performance.now(), known: 0, revoked: false };
  const holder = await takeLock(lockPath, 0); // L1.LOCK.HOLDER, before the first lease write
  if (!holder) fail(`could not take the holder lock ${lockPath}`, 1);

  const lease = {
    schema: 'synclease.lease', schema_version: 1, family: FAMILY, instance_id: instanceId,
    scope_id: crypto.createHash('sha256').update(root, 'utf8').digest('hex').slice(0, 16),
    daemon_root: root, pid: process.pid, process_start_time: start.time,
    process_start_ticks: start.ticks, boot_id: start.bootId, port: 0, package_version: opts.version,
    protocol_version: 1, acquired_at: null, renewed_at: null, ttl_seconds: opts.ttl, state: 'serving',
    token, auth_scope: null, queue_db_path: null,
  };

  function health() {
    const expires = new Date(Date.parse(lease.renewed_at) + opts.ttl * 1000).getTime();
    const { token: _secret, schema, schema_version, family, acquired_at, ttl_seconds, state: s, renewed_at, ...same } = lease;
    return {
      ...same, daemon_family: FAMILY, started_at: startedAt, server_url: null, session_id: null,
      lease: { state: s, renewed_at, expires_at: wireTime(expires), write_error: null },
      sync: {
        running: state.phase === 'serving', queue_depth: state.inFlight ? 1 : 0, last_sync: null,
        consecutive_failures: 0, auth_problem: false, dead_letters: 0, in_flight: state.inFlight,
      },
    };
  }

  function reply(res, status, doc) {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(doc));
  }

  // L1.CONTROL.*: GET /api/health; POST /api/retire|shutdown|kick with Authorization: Bearer <token>.
  const routes = { '/api/health': 'GET', '/api/retire': 'POST', '/api/shutdown': 'POST', '/api/kick': 'POST', '/api/work': 'POST' };
  const server = http.createServer((req, res) => {
    const host = (req.headers.host || '').replace(/:\d+$/, '');
    if (host && !['127.0.0.1', 'localhost', '[::1]'].includes(host)) return reply(res, 403, { error: 'forbidden_host' });
    const url = req.url.split('?')[0];
    if (!routes[url]) return reply(res, 404, { error: 'not_found' });
    if (routes[url] !== req.method) return reply(res, 405, { error: 'not_found' });
    if (url === '/api/health') return reply(res, 200, health());
    const [scheme, presented] = (req.headers.authorization || '').split(' ');
    const a = Buffer.from(scheme === 'Bearer' && presented ? presented : '');
    const b = Buffer.from(token);
    if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) return reply(res, 403, { error: 'forbidden' });
    let body = '';
    req.on('data', (chunk) => { body += chunk; if (body.length > 65536) req.destroy(); });
    req.on('end', () => {
      if (url === '/api/kick') { state.lastActivity = performance.now(); return reply(res, 202, { accepted: true }); }
      if (url === '/api/work') { // example-only: simulated work in flight, reported in health
        const seconds = Math.min(Number((JSON.parse(body || '{}') || {}).seconds) || 1, 60);
        if (state.phase !== 'serving') return reply(res, 503, { accepted: false });
        state.inFlight = true;
        setTimeout(() => { state.inFlight = false; state.lastActivity = performance.now(); }, seconds * 1000);
        return reply(res, 202, { accepted: true });
      }
      reply(res, 202, { accepted: true });
      retire(url === '/api/retire' ? 'retire_requested' : 'shutdown_requested');
    });
  });

  const port = await listen(server, portRange()); // L1.DAEMON.BIND: 127.0.0.1 only
  if (port === null) fail('no free port in the sync range; set SYNCLEASE_PORT_RANGE', 1);
  lease.port = port;
  lease.acquired_at = lease.renewed_at = wireTime(Date.now());
  atomicWrite(leasePath, lease); // L1.DAEMON.START: first write, state serving (we already listen)

  async function underSingletonLock(work) {
    const lock = await takeLock(singletonLock, 15);
    if (!lock) return false;
    try { work(); } finally { await lock.release(); }
    return true;
  }

  // L1.SINGLETON.WRITER: a daemon started by itself records itself; a managed one only notes the
  // generation it started under.
  const current = readRecord(singletonPath, 'synclease.singleton');
  state.known = current && current.family === FAMILY ? current.generation : 0;
  if (!opts.managed) await underSingletonLock(() => {
    const current = readRecord(singletonPath, 'synclease.singleton');
    const generation = Math.max(current && current.family === FAMILY ? current.generation + 1 : 1, Date.now());
    atomicWrite(singletonPath, {
      schema: 'synclease.singleton', schema_version: 1, family: FAMILY, instance_id: instanceId,
      generation, pid: process.pid, port, package_version: opts.version, protocol_version: 1,
      written_at: wireTime(Date.now()),
    });
    state.known = generation;
  });

  const startedMono = performance.now();
  let retiring = null;

  function ours(doc) {
    return doc && doc.instance_id === instanceId && doc.token === token && doc.pid === process.pid;
  }

  function stalled() {
    return opts.stopRenewingAfter !== null && performance.now() - startedMono > opts.stopRenewingAfter * 1000;
  }

  function renew() {
    if (stalled()) return;
    if (!ours(readRecord(leasePath, 'synclease.lease'))) { // L1.DAEMON.REVOKED
      state.revoked = true;
      return retire('lease_revoked');
    }
    lease.renewed_at = wireTime(Math.max(Date.now(), Date.parse(lease.acquired_at)));
    lease.state = state.phase === 'serving' ? 'serving' : 'draining';
    atomicWrite(leasePath, lease); // L1.LEASE.RENEW
  }

  function tick() {
    try {
      renew();
      const record = readRecord(singletonPath, 'synclease.singleton');
      if (record && record.instance_id === instanceId) state.known = Math.max(state.known, record.generation);
      else if (record && record.generation > state.known) retire('superseded'); // L1.SINGLETON.SUPERSEDE
      if (!state.inFlight && performance.now() - state.lastActivity >= opts.idle * 1000) retire('idle');
    } catch (err) {
      process.stderr.write(`node-daemon: heartbeat failed: ${err.message}\n`);
    }
    setTimeout(tick, opts.heartbeat * 1000);
  }

  // L1.DAEMON.RETIRE: draining, wait for work in flight, clear the singleton if it names us, close the
  // port, delete the own lease, remove the lock file while holding it, release the lock, exit 0.
  function retire(reason) {
    if (retiring) return retiring;
    state.phase = 'draining';
    retiring = (async () => {
      if (!state.revoked && !stalled()) { lease.state = 'draining'; lease.renewed_at = wireTime(Date.now()); atomicWrite(leasePath, lease); }
      while (state.inFlight) await new Promise((r) => setTimeout(r, 50));
      await underSingletonLock(() => {
        const record = readRecord(singletonPath, 'synclease.singleton');
        if (record && record.instance_id === instanceId && record.pid === process.pid) fs.rmSync(singletonPath, { force: true });
      });
      await new Promise((r) => { server.close(() => r()); server.closeAllConnections(); });
      if (ours(readRecord(leasePath, 'synclease.lease'))) fs.rmSync(leasePath, { force: true });
      if (!fs.existsSync(leasePath)) fs.rmSync(lockPath, { force: true });
      await holder.release();
      process.stderr.write(`node-daemon: retired reason=${reason} instance=${instanceId}\n`);
      process.exit(0);
    })();
    return retiring;
  }

  process.on('SIGTERM', () => retire('signal'));
  process.on('SIGINT', () => retire('signal'));
  process.stdout.write(`serving instance=${instanceId} port=${port} pid=${process.pid}\n`);
  setTimeout(tick, opts.heartbeat * 1000);
}

main().catch((err) => fail(err.message, 1));

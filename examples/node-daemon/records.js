// lease-v1 records on disk, written from protocol/lease-v1.md alone (Node.js 20 standard library).
'use strict';

const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');

const C = fs.constants;
const MAX_RECORD_BYTES = 65536;

// L1.TIME.FORMAT: YYYY-MM-DDTHH:MM:SS.ffffffZ (JavaScript has milliseconds; the last three digits are 0).
function wireTime(ms) {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

// L1.WRITE.ATOMIC: temp file (O_CREAT|O_EXCL|O_NOFOLLOW, 0600, name starting with "."), fsync, rename,
// fsync the directory.
function atomicWrite(target, doc) {
  const keys = Object.keys(doc).sort();
  const sorted = {};
  for (const k of keys) sorted[k] = doc[k];
  const bytes = Buffer.from(JSON.stringify(sorted, null, 1) + '\n', 'utf8');
  if (bytes.length > MAX_RECORD_BYTES) throw new Error('record too large');
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, bytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  const dfd = fs.openSync(dir, C.O_RDONLY);
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

// L1.READ.DEFENSIVE (the part this daemon needs): a regular 0600 file of ours, bounded, a JSON object
// of a known schema and version. Returns the object, or null (untrusted or missing).
function readRecord(file, schema) {
  let fd;
  try {
    fd = fs.openSync(file, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (err) {
    return null;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== process.getuid() || (st.mode & 0o077) !== 0) return null;
    if (st.size > MAX_RECORD_BYTES || st.size === 0) return null;
    const buf = Buffer.alloc(st.size);
    const got = fs.readSync(fd, buf, 0, st.size, 0);
    const doc = JSON.parse(buf.subarray(0, got).toString('utf8'));
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return null;
    if (doc.schema !== schema || doc.schema_version !== 1) return null;
    return doc;
  } catch (err) {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

// L1.LOCK.HOLDER via flock(1) (util-linux): Node has no flock(2). The helper takes the lock, closes the
// lock fd before running its command (-o: nothing else inherits it), says "locked", then waits on its
// stdin; when this process dies or closes the pipe, the helper exits and the kernel frees the lock. That
// is the "helper bound to the holder's life" that L1.LOCK.HOLDER allows.
function takeLock(lockPath, waitSeconds) {
  const args = ['-x', '-o'];
  args.push(...(waitSeconds > 0 ? ['-w', String(waitSeconds)] : ['-n']));
  args.push(lockPath, 'sh', '-c', 'echo locked; exec cat >/dev/null');
  return new Promise((resolve) => {
    const child = spawn('flock', args, { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    let done = false;
    const finish = (value) => {
      if (!done) {
        done = true;
        resolve(value);
      }
    };
    child.on('error', () => finish(null));
    child.on('exit', () => finish(null));
    child.stdout.on('data', (chunk) => {
      out += chunk.toString();
      if (out.includes('locked')) {
        finish({
          release: () =>
            new Promise((res) => {
              if (child.exitCode !== null || child.signalCode !== null) return res();
              child.on('exit', () => res());
              child.stdin.end();
            }),
        });
      }
    });
  });
}

// L1.OS.START: start time as the OS reports it: btime (/proc/stat) + field 22 of /proc/self/stat
// divided by the clock-tick rate (100 Hz on Linux).
function processStart() {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[19]);
  const btime = Number(/^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))[1]);
  let bootId = null;
  try {
    bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch (err) {
    bootId = null;
  }
  return { time: btime + ticks / 100, ticks, bootId };
}

module.exports = { wireTime, atomicWrite, readRecord, takeLock, processStart };

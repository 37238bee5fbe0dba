// Starts the example server as a child process on a free loopback port,
// waits for readiness, and stops it again.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, createWriteStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './util.js';
import { JWT_SECRET } from './jwt.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = resolve(HERE, '..');
export const REPO_ROOT = resolve(E2E_DIR, '..', '..');
export const PUBLISH_KEY = 'e2e-key';

/** The server binary: NOTIFY_E2E_SERVER, or the release example build. */
export function serverBinary() {
  return process.env.NOTIFY_E2E_SERVER || join(REPO_ROOT, 'target', 'release', 'examples', 'server');
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

const OPTIONAL = ['NOTIFY_KAFKA_BROKERS', 'NOTIFY_MONGO_URI', 'NOTIFY_RULES', 'NOTIFY_ALLOWED_ORIGINS', 'NOTIFY_JWT_PUBLIC_KEY_FILE', 'NOTIFY_JWT_GROUPS_CLAIM', 'NOTIFY_SESSION_QUEUE', 'NOTIFY_JWT_AUDIENCE', 'NOTIFY_JWT_ISSUER', 'NOTIFY_RESUME_MAX', 'NOTIFY_MAX_CONNECTIONS', 'NOTIFY_MAX_SESSIONS_PER_USER', 'NOTIFY_PUBLISH_RATE', 'NOTIFY_USER_RATE', 'NOTIFY_LINK_ORIGINS', 'NOTIFY_HEADER_READ_TIMEOUT', 'NOTIFY_LOG_FORMAT', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_SERVICE_NAME'];

/** Never let an outer configuration leak in; a `null` value in `env` removes that variable. */
function cleanEnv(fullEnv, env) {
  for (const k of OPTIONAL) if (!(k in env)) delete fullEnv[k];
  for (const [k, v] of Object.entries(env)) if (v === null || v === undefined) delete fullEnv[k];
}

/**
 * Run the server with a configuration expected to stop start-up; resolves with
 * { code, signal, output } or { timedOut: true, output } after `timeoutMs`.
 */
export async function runExpectingExit(env, timeoutMs = 15_000) {
  const port = await freePort();
  const fullEnv = {
    ...process.env,
    NOTIFY_LISTEN: `127.0.0.1:${port}`,
    NOTIFY_JWT_SECRET: JWT_SECRET,
    NOTIFY_PUBLISH_KEY: PUBLISH_KEY,
    RUST_LOG: 'info',
    ...env,
  };
  cleanEnv(fullEnv, env);
  const proc = spawn(serverBinary(), [], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let stderr = '';
  proc.stdout.on('data', (c) => { output += c; });
  proc.stderr.on('data', (c) => { output += c; stderr += c; });
  const exit = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  const res = await Promise.race([exit, sleep(timeoutMs).then(() => null)]);
  if (!res) {
    proc.kill('SIGKILL');
    await exit;
    return { timedOut: true, output, stderr };
  }
  return { ...res, output, stderr };
}

/**
 * Start a server. `env` adds or overrides variables (e.g. NOTIFY_SESSION_QUEUE). It is
 * started once `waitPath` (default /health/ready) answers 200.
 * Returns { base, wsUrl, port, proc, logs(), stop() }.
 */
export async function startServer({ name = 'server', env = {}, readyTimeoutMs = 30_000, waitPath = '/health/ready' } = {}) {
  const bin = serverBinary();
  if (!existsSync(bin)) {
    throw new Error(
      `server binary not found at ${bin}: run \`cargo build --release --example server\` in ${REPO_ROOT} ` +
        'or set NOTIFY_E2E_SERVER',
    );
  }
  const port = await freePort();
  const fullEnv = {
    ...process.env,
    NOTIFY_LISTEN: `127.0.0.1:${port}`,
    NOTIFY_JWT_SECRET: JWT_SECRET,
    NOTIFY_PUBLISH_KEY: PUBLISH_KEY,
    RUST_LOG: process.env.NOTIFY_E2E_RUST_LOG || 'info',
    ...env,
  };
  cleanEnv(fullEnv, env);
  const artifacts = join(E2E_DIR, 'artifacts');
  mkdirSync(artifacts, { recursive: true });
  const logPath = join(artifacts, `${name}-${port}.log`);
  const logFile = createWriteStream(logPath);
  let tail = '';
  const proc = spawn(bin, [], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const onData = (chunk) => {
    logFile.write(chunk);
    tail = (tail + chunk.toString()).slice(-8000);
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  let exited = null;
  const exitPromise = new Promise((r) => proc.on('exit', (code, signal) => {
    exited = { code, signal };
    r(exited);
  }));
  const base = `http://127.0.0.1:${port}`;
  const server = {
    name,
    port,
    base,
    wsUrl: `ws://127.0.0.1:${port}/notify`,
    proc,
    logPath,
    logs: () => tail,
    exited: () => exited,
    exitPromise,
    /** SIGTERM, wait up to `graceMs`, then SIGKILL. Resolves with { code, signal, ms }. */
    async stop(graceMs = 10_000) {
      if (exited) return { ...exited, ms: 0 };
      const t0 = Date.now();
      proc.kill('SIGTERM');
      const res = await Promise.race([exitPromise, sleep(graceMs).then(() => null)]);
      if (!res) {
        proc.kill('SIGKILL');
        await exitPromise;
        logFile.end();
        return { code: null, signal: 'SIGKILL', ms: Date.now() - t0, killed: true };
      }
      logFile.end();
      return { ...res, ms: Date.now() - t0 };
    },
  };
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited) {
      throw new Error(`server exited during start-up (${JSON.stringify(exited)}); log tail:\n${tail}`);
    }
    try {
      const res = await fetch(`${base}${waitPath}`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.stop(2000);
      throw new Error(`server not ready after ${readyTimeoutMs} ms; log tail:\n${tail}`);
    }
    await sleep(100);
  }
  return server;
}

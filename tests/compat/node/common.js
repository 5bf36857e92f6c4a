'use strict';
// Shared plumbing for the ali-ons driver scripts (producer.js, consumer.js).
//
// Protocol with the Python harness (tests/compat/alions.py):
//   * the only command-line argument is one JSON object (the script's configuration);
//   * stdout carries exactly one JSON object per line, each with an "event" field, and nothing else;
//   * ali-ons' own warn/error log lines become {"event":"log"} lines (its default logger writes to stderr);
//   * exit code 0 = the script did what it was asked (failures it was told to expect are events),
//     1 = an unexpected error (a {"event":"fatal"} line says which), 2 = bad configuration.

const util = require('util');

function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields)) + '\n');
}

// ali-ons attaches `code` (a RocketMQ response code) to MQClientException; keep it, it is what tests assert on.
function describeError(err) {
  if (!(err instanceof Error)) {
    return { name: typeof err, message: String(err) };
  }
  const out = { name: err.name, message: err.message };
  if (err.code !== undefined) {
    out.code = err.code;
  }
  return out;
}

class ConfigError extends Error {
  get name() {
    return 'ConfigError';
  }
}

function parseConfig(argv) {
  if (argv.length !== 1) {
    throw new ConfigError(`expected exactly one argument (a JSON object), got ${argv.length}`);
  }
  let config;
  try {
    config = JSON.parse(argv[0]);
  } catch (err) {
    throw new ConfigError(`the argument is not JSON: ${err.message}`);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new ConfigError('the argument must be a JSON object');
  }
  return config;
}

function requireField(config, name, type) {
  const value = config[name];
  if (value === undefined || value === null || (type && typeof value !== type)) {
    throw new ConfigError(`config.${name} is required${type ? ` (a ${type})` : ''}`);
  }
  return value;
}

// Replaces every "{i}" in a string pattern with the message index.
function expand(pattern, i) {
  return pattern === undefined || pattern === null ? pattern : String(pattern).split('{i}').join(String(i));
}

// A logger for ali-ons' `logger` option: warnings and errors become events so a test can see them in order
// with everything else; info/debug are dropped unless config.verbose is set (then they go to stderr).
function makeLogger(verbose) {
  const format = args => util.format(...args.map(a => (a instanceof Error ? `${a.name}: ${a.message}` : a)));
  return {
    debug(...args) {
      if (verbose) process.stderr.write(`[debug] ${format(args)}\n`);
    },
    info(...args) {
      if (verbose) process.stderr.write(`[info] ${format(args)}\n`);
    },
    warn(...args) {
      emit('log', { level: 'warn', message: format(args) });
    },
    error(...args) {
      emit('log', { level: 'error', message: format(args) });
    },
  };
}

// Runs `main` and turns its outcome into the exit code contract above. stdout is flushed before exiting
// because process.exit() does not wait for a piped stdout to drain.
function run(main) {
  let config;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (err) {
    emit('fatal', { error: describeError(err) });
    return exitAfterFlush(2);
  }
  main(config).then(
    code => exitAfterFlush(code || 0),
    err => {
      emit('fatal', { error: describeError(err) });
      exitAfterFlush(err instanceof ConfigError ? 2 : 1);
    });
}

function exitAfterFlush(code) {
  process.stdout.write('', () => process.exit(code));
}

// Resolves on the first SIGTERM/SIGINT; the scripts then close their ali-ons object gracefully.
function stopSignal() {
  return new Promise(resolve => {
    const handler = signal => {
      process.removeListener('SIGTERM', handler);
      process.removeListener('SIGINT', handler);
      resolve(signal);
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  });
}

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

// Rejects if `promise` does not settle within `ms` (used around close(), which can hang on a dead broker).
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([ promise, timeout ]).finally(() => clearTimeout(timer));
}

module.exports = {
  ConfigError,
  describeError,
  emit,
  expand,
  makeLogger,
  requireField,
  run,
  sleep,
  stopSignal,
  withTimeout,
};

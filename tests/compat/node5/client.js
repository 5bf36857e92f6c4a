// Drive the official RocketMQ 5 Node.js client (rocketmq-client-nodejs 1.0.8) as a separate process for
// OrbitMQ's proxy compat tests. Same protocol as ../official/py_client.py:
//   node client.js '<json config>'   → prints {"event":"started"}, then reads one JSON command per stdin line
//   and answers each with an event carrying the command's id ({"event":"error",...} when the client threw).
// Config: endpoints, role (producer | simple | push), topics, group, awaitMs (simple, default 5000),
//   tag (consumers' filter, default "*"), checker ("commit" | "rollback", producer), fail (push:
//   {bodyMatches, times}). Commands: send {topic, body, tag?, keys?, messageGroup?, delayMs?, properties?},
//   send_tx {topic, body, resolution}, receive {max, invisibleMs}, ack {messageId},
//   change {messageId, invisibleMs}, shutdown. Push consumers print "msg" events.
// One client per process: 1.0.8's shutdown() closes a shared logger, so a second client would throw.
'use strict';

const readline = require('node:readline');
const { Producer, SimpleConsumer, PushConsumer, FilterExpression, ConsumeResult } = require('rocketmq-client-nodejs');

const cfg = JSON.parse(process.argv[2]);
const silent = { info() {}, warn() {}, error() {}, debug() {}, close() {} };

function emit(event, fields) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

function describe(m) {
  return {
    message_id: m.messageId,
    topic: m.topic,
    body: m.body.toString('utf8'),
    tag: m.tag ?? null,
    keys: m.keys,
    properties: Object.fromEntries(m.properties ?? []),
    message_group: m.messageGroup ?? null,
    delivery_attempt: m.deliveryAttempt ?? null,
    delivery_timestamp: m.deliveryTimestamp ? m.deliveryTimestamp.getTime() : null,
    corrupted: m.corrupted === true, // 1.0.8 leaves it undefined unless the digest mismatched
    received_at_ms: Date.now(),
  };
}

function build() {
  const base = { endpoints: cfg.endpoints, namespace: '', logger: silent, requestTimeout: cfg.requestTimeoutMs ?? 3000 };
  const subs = new Map((cfg.topics ?? []).map(t => [ t, new FilterExpression(cfg.tag ?? '*') ]));
  if (cfg.role === 'producer') {
    const checker = cfg.checker ? {
      async check(message) {
        emit('checked', { message: describe(message) });
        return cfg.checker === 'commit' ? 1 : 2; // TransactionResolution COMMIT / ROLLBACK
      },
    } : undefined;
    return new Producer({ ...base, topics: cfg.topics, checker });
  }
  if (cfg.role === 'simple') {
    return new SimpleConsumer({ ...base, consumerGroup: cfg.group, subscriptions: subs, awaitDuration: cfg.awaitMs ?? 5000 });
  }
  if (cfg.role === 'push') {
    const failures = new Map();
    const messageListener = {
      async consume(m) {
        const info = describe(m);
        const fail = cfg.fail;
        if (fail && new RegExp(fail.bodyMatches).test(info.body)) {
          const n = failures.get(info.message_id) ?? 0;
          if (n < (fail.times ?? 1)) {
            failures.set(info.message_id, n + 1);
            emit('msg', { failed: true, ...info });
            return ConsumeResult.FAILURE;
          }
        }
        emit('msg', { failed: false, ...info });
        return ConsumeResult.SUCCESS;
      },
    };
    return new PushConsumer({ ...base, consumerGroup: cfg.group, subscriptions: subs, messageListener });
  }
  throw new Error(`unknown role ${cfg.role}`);
}

async function run(client, cmd, received) {
  switch (cmd.cmd) {
    case 'send': {
      const msg = { topic: cmd.topic, body: Buffer.from(cmd.body ?? '') };
      if (cmd.tag) msg.tag = cmd.tag;
      if (cmd.keys) msg.keys = cmd.keys;
      if (cmd.messageGroup) msg.messageGroup = cmd.messageGroup;
      if (cmd.delayMs != null) msg.delay = cmd.delayMs;
      if (cmd.properties) msg.properties = new Map(Object.entries(cmd.properties));
      const receipt = await client.send(msg);
      return [ 'sent', { message_id: receipt.messageId, offset: Number(receipt.offset), sent_at_ms: Date.now() } ];
    }
    case 'send_tx': {
      const tx = client.beginTransaction();
      const receipt = await client.send({ topic: cmd.topic, body: Buffer.from(cmd.body ?? '') }, tx);
      if (cmd.resolution === 'commit') await tx.commit();
      else if (cmd.resolution === 'rollback') await tx.rollback();
      return [ 'sent_tx', { message_id: receipt.messageId, transaction_id: receipt.transactionId } ];
    }
    case 'receive': {
      const msgs = await client.receive(cmd.max ?? 16, cmd.invisibleMs ?? 15000);
      for (const m of msgs) received.set(m.messageId, m);
      return [ 'received', { messages: msgs.map(describe) } ];
    }
    case 'ack': {
      await client.ack(received.get(cmd.messageId));
      received.delete(cmd.messageId);
      return [ 'acked', { message_id: cmd.messageId } ];
    }
    case 'change': {
      await client.changeInvisibleDuration(received.get(cmd.messageId), cmd.invisibleMs);
      return [ 'changed', { message_id: cmd.messageId } ];
    }
    default:
      throw new Error(`unknown command ${cmd.cmd}`);
  }
}

async function main() {
  const client = build();
  await client.startup();
  emit('started', { clientId: client.clientId });
  const received = new Map();
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const cmd = JSON.parse(line);
    if (cmd.cmd === 'shutdown') break;
    try {
      const [ name, fields ] = await run(client, cmd, received);
      emit(name, { id: cmd.id, ...fields });
    } catch (err) {
      emit('error', { id: cmd.id, error: `${err.name}: ${err.message}`, trace: err.stack });
    }
  }
  await client.shutdown();
  emit('closed', {});
  process.exit(0);
}

main().catch(err => {
  emit('fatal', { error: `${err.name}: ${err.message}`, trace: err.stack });
  process.exit(1);
});

'use strict';
// Sends `count` messages with the real ali-ons Producer, one JSON event per line on stdout.
//
// Configuration (one JSON object as the only argument); "{i}" in any pattern becomes the message index:
//   nameSrv        "host:port" or a list of them                        (required)
//   topic          topic name                                          (required)
//   producerGroup  default "PG_COMPAT"
//   instanceName   ali-ons instanceName (default: ali-ons' own, i.e. the PID)
//   count          number of messages, default 1
//   concurrency    sends in flight at once, default 1 (sequential)
//   tags           null/absent = no tag (ali-ons then sends TAGS "null"!), a string pattern, or a list
//                  of patterns used round robin (tags[i % n])
//   keys           a string pattern (split on spaces into several keys) or a list of patterns
//   body           body pattern, default "msg-{i}"
//   bodySize       pad (with "x") or cut the body to exactly this many bytes
//   properties     {name: pattern} extra user properties
//   delayTimeLevel RocketMQ delay level (property DELAY)
//   deliverAfterMs sets __STARTDELIVERTIME to now + this many ms (ali-ons' Aliyun timed delivery)
//   shardingKey    pattern; ali-ons then picks the queue by md5(key) (ordered sending)
//   stopOnError    default true: stop sending after the first failed send
//   lingerMs       keep the producer open this long after the last send (e.g. to see its 30-s heartbeat)
//   closeInnerProducer  default true: also close ali-ons' internal CLIENT_INNER_PRODUCER so every
//                  socket is closed with UNREGISTER_CLIENT before exiting
//   options        extra ali-ons Producer options (sendMsgTimeout, retryTimesWhenSendFailed, ...)
//   verbose        ali-ons info/debug logs to stderr
//
// Events: ready {clientId} · sent {i, msgId, queueId, queueOffset, brokerName, sendStatus}
//         · send_error {i, error} · done {sent, failed} · closed · log {level, message} · fatal {error}
// A send failure is an expected outcome (an event, exit 0); anything else unexpected exits 1.

const { Producer, Message } = require('ali-ons');
const MQProducer = require('ali-ons/lib/producer/mq_producer');
const common = require('./common');

function buildMessage(config, i) {
  let body = common.expand(config.body === undefined ? 'msg-{i}' : config.body, i);
  if (config.bodySize !== undefined) {
    const size = Number(config.bodySize);
    const raw = Buffer.from(body);
    body = raw.length >= size ? raw.subarray(0, size) : Buffer.concat([ raw, Buffer.alloc(size - raw.length, 'x') ]);
  }
  let msg;
  if (config.tags === undefined || config.tags === null) {
    msg = new Message(config.topic, body);
  } else {
    const tag = Array.isArray(config.tags) ? config.tags[i % config.tags.length] : config.tags;
    msg = new Message(config.topic, common.expand(tag, i), body);
  }
  if (config.keys !== undefined && config.keys !== null) {
    const keys = Array.isArray(config.keys) ? config.keys : String(config.keys).split(' ');
    msg.keys = keys.map(k => common.expand(k, i));
  }
  for (const [ name, pattern ] of Object.entries(config.properties || {})) {
    msg.properties[name] = common.expand(pattern, i);
  }
  if (config.delayTimeLevel !== undefined) {
    msg.delayTimeLevel = config.delayTimeLevel;
  }
  if (config.deliverAfterMs !== undefined) {
    msg.setStartDeliverTime(Date.now() + Number(config.deliverAfterMs));
  }
  if (config.shardingKey !== undefined) {
    msg.shardingKey = common.expand(config.shardingKey, i);
  }
  return msg;
}

async function sendAll(producer, config) {
  const count = config.count === undefined ? 1 : Number(config.count);
  const concurrency = Math.max(1, Number(config.concurrency || 1));
  const stopOnError = config.stopOnError !== false;
  let next = 0;
  let sent = 0;
  let failed = 0;
  let stopped = false;

  async function worker() {
    while (!stopped && next < count) {
      const i = next++;
      try {
        const result = await producer.send(buildMessage(config, i));
        sent++;
        common.emit('sent', {
          i,
          msgId: result.msgId,
          queueId: Number(result.messageQueue.queueId),
          queueOffset: result.queueOffset,
          brokerName: result.messageQueue.brokerName,
          sendStatus: result.sendStatus,
        });
      } catch (err) {
        failed++;
        common.emit('send_error', { i, error: common.describeError(err) });
        if (stopOnError) {
          stopped = true;
        }
      }
    }
  }

  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(count, 1)) }, worker));
  return { sent, failed };
}

async function closeAll(producer, config) {
  await common.withTimeout(producer.close(), 15000, 'producer.close()');
  if (config.closeInnerProducer !== false && MQProducer.defaultProducer) {
    await common.withTimeout(MQProducer.defaultProducer.close(), 15000, 'inner producer close()');
  }
}

async function main(config) {
  const nameSrv = common.requireField(config, 'nameSrv');
  common.requireField(config, 'topic', 'string');
  const options = Object.assign({
    httpclient: {}, // ali-ons asserts it even when nameSrv is given; it is only used without nameSrv
    nameSrv,
    producerGroup: config.producerGroup || 'PG_COMPAT',
    logger: common.makeLogger(config.verbose),
  }, config.options || {});
  if (config.instanceName) {
    options.instanceName = config.instanceName;
  }

  const stop = common.stopSignal();
  const producer = new Producer(options);
  producer.on('error', err => common.emit('error', { error: common.describeError(err) }));
  await producer.ready();
  common.emit('ready', { clientId: producer.clientId });

  const outcome = await Promise.race([ sendAll(producer, config), stop.then(() => null) ]);
  if (outcome) {
    common.emit('done', outcome);
    if (config.lingerMs) {
      await Promise.race([ common.sleep(Number(config.lingerMs)), stop ]);
    }
  }
  await closeAll(producer, config);
  common.emit('closed', {});
  return 0;
}

common.run(main);

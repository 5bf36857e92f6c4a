'use strict';
// Consumes with the real ali-ons push Consumer until SIGTERM, one JSON event per line on stdout.
//
// Configuration (one JSON object as the only argument):
//   nameSrv          "host:port" or a list of them                           (required)
//   consumerGroup    group name                                             (required)
//   topic            topic to subscribe                                     (required unless subscriptions)
//   expression       "*" (default), "TagA||TagB", or {"expressionType": "SQL92", "subString": "..."}
//   subscriptions    [{topic, expression}] to subscribe several topics (replaces topic/expression)
//   instanceName     ali-ons instanceName; must be unique per consumer of a group (required: two consumers
//                    with the same clientId make the broker see one consumer)
//   isBroadcast      BROADCASTING instead of CLUSTERING, default false
//   consumeFromWhere e.g. "CONSUME_FROM_FIRST_OFFSET" (ali-ons default CONSUME_FROM_LAST_OFFSET)
//   consumeTimestamp "YYYYMMDDhhmmss" (for CONSUME_FROM_TIMESTAMP)
//   fail             {"bodyMatches": regex, "tags": tag, "times": n (default 1), "mode": "throw"|"retry"}:
//                    a delivery matching every given condition fails while its reconsumeTimes < times
//                    ("throw" = the handler throws, "retry" = it returns Consumer.ACTION_RETRY)
//   handlerDelayMs   the handler sleeps this long before returning (slow consumer)
//   closeInnerProducer  default true: after consumer.close() also close ali-ons' CLIENT_INNER_PRODUCER
//                    (otherwise its MQClient keeps sockets and timers alive)
//   options          extra ali-ons Consumer options (rebalanceInterval, persistConsumerOffsetInterval,
//                    pullBatchSize, maxReconsumeTimes, clientIP, ...); defaults are ali-ons' own
//   verbose          ali-ons info/debug logs to stderr
//
// Events: ready {clientId, consumerGroup, topics} once consumer.ready() resolved (the user topics are routed,
//   heartbeated and rebalanced; the %RETRY% subscription completes asynchronously, see "allocation")
//   · allocation {topic, queues: [{brokerName, queueId}]} whenever ali-ons' rebalance changes the owned queues
//   · msg {topic, tags, keys, body, msgId, queueId, queueOffset, reconsumeTimes, brokerName, viaRetryTopic,
//          action: "ok"|"fail", properties, bornHost, storeHost, commitLogOffset} per delivery
//   · error {error} (ali-ons error events; not fatal) · log {level, message} · closed · fatal {error}

const { Consumer } = require('ali-ons');
const MixAll = require('ali-ons/lib/mix_all');
const MQProducer = require('ali-ons/lib/producer/mq_producer');
const common = require('./common');

function subscriptionsOf(config) {
  if (Array.isArray(config.subscriptions) && config.subscriptions.length) {
    return config.subscriptions.map(s => {
      common.requireField(s, 'topic', 'string');
      return { topic: s.topic, expression: s.expression === undefined ? '*' : s.expression };
    });
  }
  common.requireField(config, 'topic', 'string');
  return [{ topic: config.topic, expression: config.expression === undefined ? '*' : config.expression }];
}

function failRule(config) {
  const rule = config.fail;
  if (!rule) {
    return () => false;
  }
  const bodyRe = rule.bodyMatches === undefined ? null : new RegExp(rule.bodyMatches);
  const times = rule.times === undefined ? 1 : Number(rule.times);
  return (msg, body) => (!bodyRe || bodyRe.test(body)) &&
    (rule.tags === undefined || msg.tags === rule.tags) &&
    msg.reconsumeTimes < times;
}

// The retry-topic wrapper inside ali-ons calls the user handler with the message only (no queue), so the
// broker name of such a delivery is recovered from the record's store host.
function brokerNameOf(consumer, msg, mq) {
  if (mq) {
    return mq.brokerName;
  }
  for (const [ name, addrs ] of consumer._mqClient._brokerAddrTable) {
    if (Object.values(addrs || {}).includes(msg.storeHost)) {
      return name;
    }
  }
  return null;
}

function ownedQueues(consumer, topic) {
  const queues = [];
  for (const { messageQueue } of consumer.processQueueTable.values()) {
    if (messageQueue.topic === topic) {
      queues.push({ brokerName: messageQueue.brokerName, queueId: Number(messageQueue.queueId) });
    }
  }
  return queues.sort((a, b) => (a.brokerName === b.brokerName ? a.queueId - b.queueId : a.brokerName < b.brokerName ? -1 : 1));
}

function makeHandler(consumer, config) {
  const shouldFail = failRule(config);
  const mode = (config.fail && config.fail.mode) || 'throw';
  const delay = Number(config.handlerDelayMs || 0);
  // ali-ons asserts the handler is an `async function`.
  return async (msg, mq) => {
    const body = msg.body ? msg.body.toString('utf8') : '';
    const fail = shouldFail(msg, body);
    common.emit('msg', {
      topic: msg.topic,
      tags: msg.tags,
      keys: msg.keys === undefined ? null : msg.keys,
      body,
      msgId: msg.msgId,
      queueId: msg.queueId,
      queueOffset: msg.queueOffset,
      reconsumeTimes: msg.reconsumeTimes,
      brokerName: brokerNameOf(consumer, msg, mq),
      viaRetryTopic: !mq,
      action: fail ? 'fail' : 'ok',
      properties: msg.properties,
      bornHost: msg.bornHost,
      storeHost: msg.storeHost,
      commitLogOffset: msg.commitLogOffset,
    });
    if (delay) {
      await common.sleep(delay);
    }
    if (fail) {
      if (mode === 'retry') {
        return Consumer.ACTION_RETRY;
      }
      throw new Error('compat harness: failing this delivery on purpose');
    }
  };
}

async function closeAll(consumer, config) {
  await common.withTimeout(consumer.close(), 15000, 'consumer.close()');
  if (config.closeInnerProducer !== false && MQProducer.defaultProducer) {
    await common.withTimeout(MQProducer.defaultProducer.close(), 15000, 'inner producer close()');
  }
}

async function main(config) {
  const nameSrv = common.requireField(config, 'nameSrv');
  const consumerGroup = common.requireField(config, 'consumerGroup', 'string');
  const instanceName = common.requireField(config, 'instanceName', 'string');
  const subscriptions = subscriptionsOf(config);
  const options = Object.assign({
    httpclient: {}, // ali-ons asserts it even when nameSrv is given; it is only used without nameSrv
    nameSrv,
    consumerGroup,
    instanceName,
    isBroadcast: !!config.isBroadcast,
    logger: common.makeLogger(config.verbose),
  }, config.consumeFromWhere ? { consumeFromWhere: config.consumeFromWhere } : {},
  config.consumeTimestamp ? { consumeTimestamp: config.consumeTimestamp } : {},
  config.options || {});

  const stop = common.stopSignal();
  const consumer = new Consumer(options);
  consumer.on('error', err => common.emit('error', { error: common.describeError(err) }));
  const topics = subscriptions.map(s => s.topic);
  if (!options.isBroadcast) {
    topics.push(MixAll.getRetryTopic(consumer.consumerGroup));
  }
  for (const topic of topics) {
    consumer.on(`topic_${topic}_queue_changed`, () => {
      common.emit('allocation', { topic, queues: ownedQueues(consumer, topic) });
    });
  }
  const handler = makeHandler(consumer, config);
  for (const s of subscriptions) {
    consumer.subscribe(s.topic, s.expression, handler);
  }

  const started = consumer.ready().then(() => true);
  if (await Promise.race([ started, stop.then(() => false) ])) {
    common.emit('ready', { clientId: consumer.clientId, consumerGroup: consumer.consumerGroup, topics });
    await stop;
  }
  await closeAll(consumer, config);
  common.emit('closed', {});
  return 0;
}

common.run(main);

// Unit tests for the default blueprint's AppSync JavaScript resolvers: `node --test`.
// AppSync provides `@aws-appsync/utils` at run time; here `util` is a stand-in with the same
// behaviour for what the resolvers use (DynamoDB JSON conversion, errors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

class AppSyncError extends Error {
  constructor(message, type) {
    super(message);
    this.type = type;
  }
}

function toValue(v) {
  if (v === null) return { NULL: true };
  if (typeof v === 'string') return { S: v };
  if (typeof v === 'number') return { N: String(v) };
  if (typeof v === 'boolean') return { BOOL: v };
  if (Array.isArray(v)) return { L: v.map(toValue) };
  return { M: toMapValues(v) };
}

function toMapValues(o) {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toValue(v)]));
}

globalThis.__appsyncUtil = {
  dynamodb: { toMapValues },
  error(message, type) {
    throw new AppSyncError(message, type);
  },
};

/** Loads a resolver as AppSync would, with `util` from the stand-in. */
async function resolver(name) {
  const source = readFileSync(new URL(`./${name}.js`, import.meta.url), 'utf8');
  const wired = source.replace(
    "import { util } from '@aws-appsync/utils';",
    'const util = globalThis.__appsyncUtil;',
  );
  assert.notEqual(wired, source, `${name}.js imports util from @aws-appsync/utils`);
  return import(`data:text/javascript,${encodeURIComponent(wired)}`);
}

const failed = { error: { message: 'ProvisionedThroughputExceededException', type: 'DynamoDB:Throttling' } };

test('getTask reads the task by its id', async () => {
  const r = await resolver('getTask');
  assert.deepEqual(r.request({ args: { id: 'task-1' } }), { operation: 'GetItem', key: { id: { S: 'task-1' } } });
  const task = { id: 'task-1', title: 'Seeded', done: false };
  assert.deepEqual(r.response({ result: task }), task);
  assert.equal(r.response({ result: undefined }), null, 'a missing task is null');
  assert.throws(() => r.response(failed), /ProvisionedThroughputExceeded/);
});

test('listActivity queries one task\'s activity, in id order', async () => {
  const r = await resolver('listActivity');
  assert.deepEqual(r.request({ args: { taskId: 'task-1' } }), {
    operation: 'Query',
    query: {
      expression: '#taskId = :taskId',
      expressionNames: { '#taskId': 'taskId' },
      expressionValues: { ':taskId': { S: 'task-1' } },
    },
    scanIndexForward: true,
    limit: 100,
  });
  const items = [{ taskId: 'task-1', id: 'a1', kind: 'created', at: '2026-11-20T09:00:00Z' }];
  assert.deepEqual(r.response({ result: { items } }), items);
  assert.throws(() => r.response(failed), /ProvisionedThroughputExceeded/);
});

test('putTask writes the fields given and leaves out the others', async () => {
  const r = await resolver('putTask');
  assert.deepEqual(r.request({ args: { id: 'task-2', title: 'Write tests', done: true, dueDate: null } }), {
    operation: 'PutItem',
    key: { id: { S: 'task-2' } },
    attributeValues: { title: { S: 'Write tests' }, done: { BOOL: true } },
  });
  const written = { id: 'task-2', title: 'Write tests', done: true };
  assert.deepEqual(r.response({ result: written }), written);
  assert.throws(() => r.response(failed), /ProvisionedThroughputExceeded/);
});

/** The default seeds (`infra/seeds/default/`), one item per line. */
function seeds(table) {
  const text = readFileSync(new URL(`../../seeds/default/${table}.jsonl`, import.meta.url), 'utf8');
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

test('the seeded tasks and activity are what the resolvers read', async () => {
  const getTask = await resolver('getTask');
  const listActivity = await resolver('listActivity');
  const tasks = seeds('Task');
  assert.ok(tasks.length > 0);
  for (const task of tasks) {
    // Task: id: ID!, title: String!
    assert.equal(typeof task.id, 'string');
    assert.equal(typeof task.title, 'string');
    assert.deepEqual(getTask.request({ args: { id: task.id } }).key, { id: { S: task.id } });
  }
  const ids = new Set(tasks.map((t) => t.id));
  for (const a of seeds('Activity')) {
    // Activity: id: ID!, taskId: ID!, kind: String!, at: AWSDateTime!
    assert.ok(ids.has(a.taskId), `${a.taskId} is a seeded task`);
    assert.ok(a.id && a.kind && !Number.isNaN(Date.parse(a.at)), JSON.stringify(a));
    const q = listActivity.request({ args: { taskId: a.taskId } }).query;
    assert.deepEqual(q.expressionValues, { ':taskId': { S: a.taskId } });
  }
});

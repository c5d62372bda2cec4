import { util } from '@aws-appsync/utils';

/** Mutation.putTask(id, title, done, dueDate): writes the task; fields not given are left out. */
export function request(ctx) {
  const { id, ...fields } = ctx.args;
  const given = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== null));
  return {
    operation: 'PutItem',
    key: util.dynamodb.toMapValues({ id }),
    attributeValues: util.dynamodb.toMapValues(given),
  };
}

export function response(ctx) {
  if (ctx.error) {
    util.error(ctx.error.message, ctx.error.type);
  }
  return ctx.result;
}

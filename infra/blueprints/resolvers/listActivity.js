import { util } from '@aws-appsync/utils';

/** Query.listActivity(taskId): a task's activity, in id order (at most 100). */
export function request(ctx) {
  return {
    operation: 'Query',
    query: {
      expression: '#taskId = :taskId',
      expressionNames: { '#taskId': 'taskId' },
      expressionValues: util.dynamodb.toMapValues({ ':taskId': ctx.args.taskId }),
    },
    scanIndexForward: true,
    limit: 100,
  };
}

export function response(ctx) {
  if (ctx.error) {
    util.error(ctx.error.message, ctx.error.type);
  }
  return ctx.result.items;
}

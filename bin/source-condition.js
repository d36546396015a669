// Checkout only (not in the package): a module hook that adds the "wirelab-source" export condition to every
// resolution, so `import ... from 'wirelab/servers/tcp'` loads servers/tcp/index.ts rather than dist/ (package.json
// "exports"). Registered by bin/wirelab.js; the tests get the same with `node --conditions=wirelab-source`.
const CONDITION = 'wirelab-source';

export async function resolve(specifier, context, next) {
  if (context.conditions.includes(CONDITION)) return next(specifier, context);
  return next(specifier, { ...context, conditions: [...context.conditions, CONDITION] });
}

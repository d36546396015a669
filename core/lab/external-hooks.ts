// Module hooks for a lab file that lives outside this package (`wirelab lab /some/dir/my-lab.ts`), registered by
// load.ts with node:module's register() after tsx's own hooks, so they run first and hand on to tsx.
//
// 1. `import ... from 'wirelab'` (or 'wirelab/servers/tcp'...) from a folder with no node_modules/wirelab: Node's own
//    resolution fails; the specifier is then resolved as a self-reference from inside this package (its "exports"
//    map), so a lab runs from any folder against the wirelab that runs it. An installed wirelab wins: the fallback is
//    used only when the ordinary resolution found nothing.
// 2. A `.ts` file under the lab's folder with no package.json saying "type": "module" would be loaded as CommonJS
//    (Node's rule for .ts without a type, followed by tsx), and a lab is ES module syntax: such files are loaded as
//    ES modules. Files under node_modules and `.cts` files keep Node's rule.
// 3. From the sources (the checkout), every resolution gets the "wirelab-source" export condition, so 'wirelab/...'
//    is this checkout's .ts files even when the CLI was started some other way than bin/wirelab.js.

interface HookData {
  /** file: URLs of the folders whose .ts files load as ES modules (each ends with '/'). */
  roots: string[];
  /** A file: URL inside this package: the parent from which 'wirelab' resolves to itself. */
  selfParent: string;
  /** Export conditions added to every resolution: ['wirelab-source'] when wirelab runs from its sources. */
  conditions: string[];
}

interface ResolveContext {
  parentURL?: string;
  conditions: string[];
  importAttributes?: Record<string, string>;
}
interface ResolveResult {
  url: string;
  format?: string | null;
  shortCircuit?: boolean;
}
type NextResolve = (specifier: string, context?: ResolveContext) => Promise<ResolveResult>;

let data: HookData = { roots: [], selfParent: '', conditions: [] };

export function initialize(d: HookData): void {
  data = d;
}

const isOwnName = (specifier: string): boolean => specifier === 'wirelab' || specifier.startsWith('wirelab/');

function underRoots(url: string): boolean {
  return data.roots.some((r) => url.startsWith(r)) && !url.includes('/node_modules/');
}

export async function resolve(specifier: string, context: ResolveContext, next: NextResolve): Promise<ResolveResult> {
  const missing = data.conditions.filter((c) => !context.conditions.includes(c));
  if (missing.length) context = { ...context, conditions: [...context.conditions, ...missing] };
  let r: ResolveResult;
  try {
    r = await next(specifier, context);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (!isOwnName(specifier) || !data.selfParent || (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED')) throw err;
    r = await next(specifier, { ...context, parentURL: data.selfParent });
  }
  if (underRoots(r.url) && /\.ts$/.test(new URL(r.url).pathname) && r.format !== 'module') return { ...r, format: 'module' };
  return r;
}

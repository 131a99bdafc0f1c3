/**
 * PAC files (`proxy: { pac: URL or file }`): FindProxyForURL() evaluated for
 * each new request URL by pac-resolver (the standard PAC functions) inside a
 * QuickJS WebAssembly sandbox (quickjs-wasi): the PAC file's code has no way
 * to the Node process, its files or its network. The file is read once (a
 * URL: fetched with a 10 s bound; else a path); its answer's first PROXY
 * (or HTTP/HTTPS) entry is used, DIRECT goes direct. SOCKS entries are
 * skipped. A PAC file that cannot be read or run is `invalid_argument`,
 * naming it.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createPacResolver, type FindProxyForURL } from 'pac-resolver';
import { QuickJS } from 'quickjs-wasi';
import { HoldlineError } from '../../shared/index.js';
import { endpoint, type ProxyEndpoint } from './proxy-config.js';

const FETCH_TIMEOUT_MS = 10_000;

/** The QuickJS engine (WebAssembly), compiled once per process; each PAC file gets an instance of its own. */
let engine: Promise<WebAssembly.Module> | undefined;

function quickjs(): Promise<QuickJS> {
  engine ??= readFile(createRequire(import.meta.url).resolve('quickjs-wasi/quickjs.wasm')).then((bytes) => WebAssembly.compile(bytes));
  return engine.then((wasm) => QuickJS.create({ wasm }));
}
const MAX_PAC_BYTES = 1024 * 1024;

async function load(source: string): Promise<string> {
  if (/^https?:\/\//i.test(source)) {
    const res = await fetch(source, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const text = await res.text();
    if (text.length > MAX_PAC_BYTES) throw new Error(`over ${MAX_PAC_BYTES} bytes`);
    return text;
  }
  return readFile(source.startsWith('file:') ? new URL(source) : source, 'utf8');
}

/** The proxy a PAC answer (`PROXY a:3128; DIRECT`) names first, or undefined for DIRECT. */
export function pacChoice(answer: string): URL | undefined | 'none' {
  for (const entry of answer.split(';')) {
    const [kind = '', where = ''] = entry.trim().split(/\s+/);
    const k = kind.toUpperCase();
    if (k === 'DIRECT') return undefined;
    if ((k === 'PROXY' || k === 'HTTP') && where !== '') return new URL(`http://${where}`);
    if (k === 'HTTPS' && where !== '') return new URL(`https://${where}`);
  }
  return 'none';
}

export class PacRouter {
  readonly #source: string;
  readonly #creds: { username?: string; password?: string; domain?: string } | undefined;
  #resolver: Promise<FindProxyForURL> | undefined;

  /** `creds`: who to be at the proxies the file names (none: the proxy URL's own, which a PAC answer never has). */
  constructor(source: string, creds?: { username?: string; password?: string; domain?: string }) {
    this.#source = source;
    this.#creds = creds;
  }

  #find(): Promise<FindProxyForURL> {
    this.#resolver ??= (async () => {
      let text: string;
      try {
        text = await load(this.#source);
      } catch (e) {
        throw new HoldlineError('invalid_argument', `the PAC file ${this.#source} cannot be read: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      try {
        return createPacResolver(await quickjs(), text);
      } catch (e) {
        throw new HoldlineError('invalid_argument', `the PAC file ${this.#source} does not compile: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    })();
    // A failed load is tried again on the next request (the file may be fixed, the server back).
    this.#resolver.catch(() => (this.#resolver = undefined));
    return this.#resolver;
  }

  /** The proxy for `url` (undefined: DIRECT), per the PAC file. */
  async route(url: URL): Promise<ProxyEndpoint | undefined> {
    const find = await this.#find();
    let answer: string;
    try {
      answer = await find(url.href);
    } catch (e) {
      throw new HoldlineError('invalid_argument', `the PAC file ${this.#source} failed for ${url.href}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const choice = pacChoice(answer);
    if (choice === 'none') throw new HoldlineError('invalid_argument', `the PAC file ${this.#source} answered ${JSON.stringify(answer)} for ${url.href}: no PROXY or DIRECT entry Holdline can use`);
    return choice === undefined ? undefined : endpoint(choice, this.#creds);
  }

  /** The PAC answer for `url` as the file gives it (for diagnosis). */
  async answer(url: URL): Promise<string> {
    return (await this.#find())(url.href);
  }
}

// Config templates live in test/fixtures/*.template with `{{NAME}}`
// placeholders. Rendering is strict both ways: every placeholder must get a
// value and every value must have a placeholder, so a template and its
// starter cannot drift apart silently.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { MiddleboxError } from './errors.js';

const PLACEHOLDER = /\{\{([A-Z][A-Z0-9_]*)\}\}/g;

export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
}

export function renderTemplate(templateName: string, template: string, values: Readonly<Record<string, string>>): string {
  const used = new Set<string>();
  const missing = new Set<string>();
  const rendered = template.replace(PLACEHOLDER, (_match, key: string) => {
    const value = values[key];
    if (value === undefined) {
      missing.add(key);
      return '';
    }
    used.add(key);
    return value;
  });
  const unused = Object.keys(values).filter((key) => !used.has(key));
  if (missing.size > 0 || unused.length > 0) {
    throw new MiddleboxError(
      'MIDDLEBOX_TEMPLATE',
      `${templateName}: ` +
        [
          missing.size > 0 ? `no value for ${[...missing].join(', ')}` : '',
          unused.length > 0 ? `no placeholder for ${unused.join(', ')}` : '',
        ]
          .filter((part) => part !== '')
          .join('; '),
    );
  }
  return rendered;
}

/** Reads test/fixtures/NAME and renders it. */
export async function renderFixture(name: string, values: Readonly<Record<string, string>>): Promise<string> {
  return renderTemplate(name, await readFile(fixturePath(name), 'utf8'), values);
}

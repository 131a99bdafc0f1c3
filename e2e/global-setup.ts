// Build the browser bundles once, before any worker starts a demo server (two
// workers building the same files at once could serve a half-written one).
import { buildBrowser, nodeOnlyInputs } from '../scripts/build-browser.js';

export default async function globalSetup(): Promise<void> {
  const built = await buildBrowser();
  for (const b of built) {
    const bad = nodeOnlyInputs(b.inputs);
    if (bad.length > 0) throw new Error(`${b.name} has Node-only inputs: ${bad.join(', ')}`);
  }
}

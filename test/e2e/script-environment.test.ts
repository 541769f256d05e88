// What every script finds in its environment besides its parameters (run-command.md §4, Compat): its
// own ConfigExtensionName and ConfigSequenceNumber, and the agent's AZURE_GUEST_AGENT_* variables of
// the latest enable — not those of whichever enable started the daemon.
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupLayout, isTerminalReport, makeAgentLayout, runCommand, waitForStatus, writeSettings, type AgentLayout } from '../helpers/agent.js';

let layout: AgentLayout;

afterEach(async () => {
  await cleanupLayout(layout);
});

const script = 'printf "%s|%s|%s" "$ConfigExtensionName" "$ConfigSequenceNumber" "$AZURE_GUEST_AGENT_EXTENSION_VERSION"';

describe('script environment', () => {
  it("gives each script its own name and sequence number and the latest enable's agent variables", async () => {
    layout = await makeAgentLayout();
    expect((await runCommand(layout, 'install')).exitCode).toBe(0);
    await writeSettings(layout, 'first', 3, { publicSettings: { source: { script } } });
    expect((await runCommand(layout, 'enable', { name: 'first', seq: 3 })).exitCode).toBe(0);
    const first = await waitForStatus(layout, 'first', 3, isTerminalReport);
    expect(first.instanceView.output).toBe(`first|3|${layout.version}`);
    // A later goal state: the agent's variables changed. The daemon the first enable started serves
    // it; runs started after that enable see its variables (the daemon may see a settings file before
    // its enable arrives, so it is the next run that is checked).
    const changed = { AZURE_GUEST_AGENT_EXTENSION_VERSION: '9.8.7' };
    expect((await runCommand(layout, 'enable', { name: 'first', seq: 3, extra: changed })).exitCode).toBe(0);
    await writeSettings(layout, 'second', 7, { publicSettings: { source: { script }, parameters: [{ name: 'ConfigSequenceNumber', value: 'a parameter wins' }] } });
    expect((await runCommand(layout, 'enable', { name: 'second', seq: 7, extra: changed })).exitCode).toBe(0);
    const second = await waitForStatus(layout, 'second', 7, isTerminalReport);
    expect(second.instanceView.output).toBe('second|a parameter wins|9.8.7');
  });
});

import { AgentRegistry } from './agents.ts';
import type { IdentityDeps } from './context.ts';
import { ProviderRegistry } from './providers.ts';
import { TemplateRegistry } from './templates.ts';
import { UserDirectory } from './users.ts';

/** The registry: people, providers, templates and agents, behind one object. */
export class Identity {
  readonly users: UserDirectory;
  readonly providers: ProviderRegistry;
  readonly templates: TemplateRegistry;
  readonly agents: AgentRegistry;

  constructor(deps: IdentityDeps) {
    this.users = new UserDirectory(deps);
    this.providers = new ProviderRegistry(deps);
    this.templates = new TemplateRegistry(deps);
    this.agents = new AgentRegistry(deps, this.providers, this.templates);
  }
}

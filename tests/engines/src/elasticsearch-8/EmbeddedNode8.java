/*
 * An Elasticsearch 8.x node whose plugins are classpath classes (ClasspathPluginsService).
 * Launcher calls EmbeddedNode8.create(environment, pluginClasses) when this class is present.
 */
package org.elasticsearch.node;

import java.util.Collection;
import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.ClasspathPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;

public final class EmbeddedNode8 extends Node {
    private EmbeddedNode8(NodeConstruction construction) {
        super(construction);
    }

    public static Node create(Environment environment, Collection<Class<? extends Plugin>> plugins) {
        PluginsLoader loader = ClasspathPluginsService.emptyLoader();
        NodeServiceProvider provider = new NodeServiceProvider() {
            @Override
            PluginsService newPluginService(Environment env, PluginsLoader l) {
                return new ClasspathPluginsService(env.settings(), env.configDir(), l, plugins);
            }
        };
        return new EmbeddedNode8(NodeConstruction.prepareConstruction(environment, loader, provider, false));
    }
}

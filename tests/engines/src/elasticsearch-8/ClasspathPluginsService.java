/*
 * Elasticsearch 8.x loads plugins only from bundles (directories with descriptors). For an
 * embedded node the modules are on the classpath: this PluginsService hands their Plugin classes
 * to the node instead (the way Elasticsearch's own test framework does). Compiled for
 * elasticsearch-8 only, into the engine's own package (everything here is one unnamed module).
 */
package org.elasticsearch.plugins;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import org.elasticsearch.Build;
import org.elasticsearch.common.settings.Settings;

public class ClasspathPluginsService extends PluginsService {
    private final List<LoadedPlugin> classpathPlugins;

    public ClasspathPluginsService(Settings settings, Path configDir, PluginsLoader loader,
                                   Collection<Class<? extends Plugin>> classes) {
        super(settings, configDir, loader);
        List<LoadedPlugin> loaded = new ArrayList<>();
        for (Class<? extends Plugin> c : classes) {
            Plugin plugin = loadPlugin(c, settings, configDir);
            PluginDescriptor d = new PluginDescriptor(c.getName(), "classpath plugin", "NA", Build.current().version(),
                    Integer.toString(Runtime.version().feature()), c.getName(), null, Collections.emptyList(),
                    false, false, false, false);
            loaded.add(new LoadedPlugin(d, plugin, c.getClassLoader()));
        }
        loadExtensions(loaded);
        this.classpathPlugins = List.copyOf(loaded);
    }

    /** An empty loader, built without PluginsLoader.createPluginsLoader (which needs a named server module). */
    public static PluginsLoader emptyLoader() {
        return new PluginsLoader(java.util.Set.of(), java.util.Set.of(), java.util.Map.of());
    }

    @Override
    protected final List<LoadedPlugin> plugins() {
        return classpathPlugins;
    }
}

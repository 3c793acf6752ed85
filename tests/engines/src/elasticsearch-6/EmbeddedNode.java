/*
 * Elasticsearch 6.x's Node is abstract (the node name is handed to the logging setup by a subclass):
 * Launcher uses this subclass when it is on the classpath. scripts/engine.sh compiles it for
 * elasticsearch-6 only.
 */
import java.util.Collection;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.Plugin;

public final class EmbeddedNode extends Node {
    public EmbeddedNode(Environment environment, Collection<Class<? extends Plugin>> plugins, boolean forbidPrivateIndexSettings) {
        super(environment, plugins, forbidPrivateIndexSettings);
    }

    @Override
    protected void registerDerivedNodeNameWithLogger(String nodeName) {
        // the launcher's log pattern carries no node name
    }
}

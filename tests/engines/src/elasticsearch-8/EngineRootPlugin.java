/*
 * GET / for the embedded Elasticsearch 8.x node. In 8.x the root endpoint lives in the rest-root
 * module, which Maven Central does not publish; this classpath plugin answers it from the server
 * jar's own build and version data (number, hash, date, Lucene and compatibility versions) in the
 * shape rest-root answers. Everything else the node serves is Elasticsearch's own code.
 */
import java.util.Collection;
import java.util.List;
import java.util.function.Predicate;
import java.util.function.Supplier;
import org.elasticsearch.Build;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.index.IndexVersion;
import org.elasticsearch.index.IndexVersions;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;

public final class EngineRootPlugin extends Plugin implements ActionPlugin {
    @Override
    public Collection<RestHandler> getRestHandlers(Settings settings, NamedWriteableRegistry registry, RestController controller,
            ClusterSettings clusterSettings, IndexScopedSettings indexScopedSettings, SettingsFilter settingsFilter,
            IndexNameExpressionResolver resolver, Supplier<DiscoveryNodes> nodes, Predicate<NodeFeature> features) {
        Build b = Build.current();
        String body = "{\"name\":\"" + settings.get("node.name", "node") + "\",\"cluster_name\":\"" + settings.get("cluster.name", "elasticsearch")
                + "\",\"cluster_uuid\":\"_na_\",\"version\":{\"number\":\"" + b.qualifiedVersion() + "\",\"build_flavor\":\"default\",\"build_type\":\""
                + b.type().displayName() + "\",\"build_hash\":\"" + b.hash() + "\",\"build_date\":\"" + b.date() + "\",\"build_snapshot\":" + b.isSnapshot()
                + ",\"lucene_version\":\"" + IndexVersion.current().luceneVersion() + "\",\"minimum_wire_compatibility_version\":\""
                + b.minWireCompatVersion() + "\",\"minimum_index_compatibility_version\":\"" + Build.minimumCompatString(IndexVersions.MINIMUM_COMPATIBLE)
                + "\"},\"tagline\":\"You Know, for Search\"}\n";
        return List.of(new BaseRestHandler() {
            @Override
            public String getName() {
                return "engine_root";
            }

            @Override
            public List<Route> routes() {
                return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
            }

            @Override
            protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
                return channel -> channel.sendResponse(new RestResponse(RestStatus.OK, "application/json", body));
            }
        });
    }
}

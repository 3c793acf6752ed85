/*
 * Starts ONE real Elasticsearch or OpenSearch node in this JVM, with the engine's modules (taken from
 * Maven Central, on the classpath) as classpath plugins: the way the engines' own test frameworks start
 * nodes. One source for every engine: everything engine-specific is looked up by reflection, so the
 * same file compiles against Elasticsearch 6.x/7.x and OpenSearch 1.x/2.x/3.x.
 *
 *   java -cp CLASSPATH:CLASSES Launcher --dir DIR --port PORT [SETTING=VALUE ...]
 *
 * DIR holds data/, logs/ and home/ (a restart on the same DIR keeps the indices). PORT 0 binds a free
 * port. HTTP and transport bind 127.0.0.1 only (transport on a free port). On success it prints one line
 *   remote-reindex-engine ready url=http://127.0.0.1:PORT flavor=F version=V
 * On SIGTERM it closes the node (flushing shards) and exits 0. On a failed start it prints
 *   remote-reindex-engine failed: CLASS: MESSAGE
 * as its last line and exits 1.
 */
import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

public final class Launcher {
    /** The engine modules published on Maven Central (artifact name prefixes); their plugins are loaded. */
    private static final String[] MODULE_JARS = {
        "transport-netty4-client-", "transport-netty4-", "reindex-client-", "lang-painless-", "analysis-common-",
        "mapper-extras-client-", "parent-join-client-", "percolator-client-", "lang-mustache-client-",
    };

    public static void main(String[] args) {
        try {
            run(args);
        } catch (Throwable t) {
            Throwable root = t;
            while ((root instanceof InvocationTargetException || root.getCause() != null)
                    && root.getCause() != null && root.getCause() != root) {
                root = root.getCause();
            }
            t.printStackTrace();
            String top = t instanceof InvocationTargetException && t.getCause() != null ? t.getCause().toString() : t.toString();
            String msg = root == t || root.toString().equals(top) ? top : top + " (cause: " + root + ")";
            System.out.println("remote-reindex-engine failed: " + msg.replace('\n', ' '));
            System.out.flush();
            System.exit(1);
        }
    }

    private static void run(String[] args) throws Throwable {
        Path dir = null;
        String port = "0";
        Map<String, String> user = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--dir")) {
                dir = Paths.get(args[++i]).toAbsolutePath();
            } else if (a.equals("--port")) {
                port = args[++i];
            } else if (a.contains("=")) {
                int eq = a.indexOf('=');
                user.put(a.substring(0, eq), a.substring(eq + 1));
            } else {
                throw new IllegalArgumentException("unexpected argument [" + a + "]: expected --dir DIR, --port PORT or SETTING=VALUE");
            }
        }
        if (dir == null) {
            throw new IllegalArgumentException("--dir DIR is required");
        }
        Path home = dir.resolve("home");
        for (String d : new String[] {"config", "plugins", "modules"}) {
            Files.createDirectories(home.resolve(d));
        }
        Files.createDirectories(dir.resolve("data"));
        Files.createDirectories(dir.resolve("logs"));
        configureLogging(dir);

        String prefix = exists("org.opensearch.node.Node") ? "org.opensearch" : "org.elasticsearch";
        String flavor = prefix.equals("org.opensearch") ? "OpenSearch" : "Elasticsearch";
        try { // Elasticsearch 8.x: its own logging API needs a provider before any engine class logs
            Class.forName(prefix + ".common.logging.LogConfigurator").getMethod("configureESLogging").invoke(null);
        } catch (NoSuchMethodException | ClassNotFoundException ignored) {
            // older engines log through Log4j directly
        }
        Class<?> versionClass = Class.forName(prefix + ".Version");
        Object current = versionClass.getField("CURRENT").get(null);
        int major = ((Number) versionClass.getField("major").get(current)).intValue();
        boolean es6 = flavor.equals("Elasticsearch") && major < 7;

        Map<String, String> s = new LinkedHashMap<>();
        s.put("cluster.name", "remote-reindex-test");
        s.put("node.name", "rr-" + flavor.toLowerCase() + "-" + major);
        s.put("path.home", home.toString());
        s.put("path.data", dir.resolve("data").toString());
        s.put("path.logs", dir.resolve("logs").toString());
        s.put("discovery.type", "single-node");
        s.put("network.host", "127.0.0.1");
        s.put("http.port", port);
        s.put(es6 ? "transport.tcp.port" : "transport.port", "0");
        s.put("http.type", "netty4");
        s.put("transport.type", "netty4");
        s.put("cluster.routing.allocation.disk.threshold_enabled", "false");
        s.put("search.keep_alive_interval", "1s");
        s.putAll(user);

        Class<?> settingsClass = Class.forName(prefix + ".common.settings.Settings");
        Object builder = settingsClass.getMethod("builder").invoke(null);
        Method put = builder.getClass().getMethod("put", String.class, String.class);
        for (Map.Entry<String, String> e : s.entrySet()) {
            put.invoke(builder, e.getKey(), e.getValue());
        }
        Object settings = builder.getClass().getMethod("build").invoke(builder);

        Object env = environment(prefix, settingsClass, settings);

        List<Class<?>> plugins = modulePlugins(prefix);
        if (exists("EngineRootPlugin")) { // Elasticsearch 8.x: GET / (its rest-root module is not on Maven Central)
            plugins.add(Class.forName("EngineRootPlugin"));
        }
        System.out.println("remote-reindex-engine: " + flavor + " " + current + ", plugins " + names(plugins));

        Class<?> nodeClass = Class.forName(prefix + ".node.Node");
        Class<?> envClass = Class.forName(prefix + ".env.Environment");
        // An engine whose Node is abstract (Elasticsearch 6.x) ships a concrete EmbeddedNode beside us.
        Class<?> concrete = exists("EmbeddedNode") ? Class.forName("EmbeddedNode") : nodeClass;
        Object node = null;
        if (exists("org.elasticsearch.node.EmbeddedNode8")) { // Elasticsearch 8.x
            node = Class.forName("org.elasticsearch.node.EmbeddedNode8").getMethod("create", envClass, Collection.class)
                    .invoke(null, env, plugins);
        }
        for (Constructor<?> c : node != null ? new Constructor<?>[0] : concrete.getDeclaredConstructors()) {
            Class<?>[] p = c.getParameterTypes();
            if (p.length >= 2 && p[0] == envClass && Collection.class.isAssignableFrom(p[1])) {
                c.setAccessible(true);
                Object[] a = new Object[p.length];
                a[0] = env;
                a[1] = c.getGenericParameterTypes()[1].getTypeName().contains("PluginInfo")
                        ? pluginInfos(prefix, current, plugins) // OpenSearch 3.x
                        : plugins;
                for (int i = 2; i < p.length; i++) {
                    a[i] = p[i] == boolean.class ? Boolean.FALSE : null;
                }
                node = c.newInstance(a);
                break;
            }
        }
        if (node == null) {
            throw new IllegalStateException("no Node(Environment, Collection<Class<? extends Plugin>>, ...) constructor in " + flavor + " " + current);
        }
        final Object theNode = node;
        call(node, "start");

        int boundPort = httpPort(prefix, node);
        final CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                System.out.println("remote-reindex-engine: stopping");
                call(theNode, "close");
                try {
                    nodeClass.getMethod("awaitClose", long.class, TimeUnit.class).invoke(theNode, 30L, TimeUnit.SECONDS);
                } catch (NoSuchMethodException ignored) {
                    // older engines close synchronously
                }
                System.out.println("remote-reindex-engine: stopped");
            } catch (Throwable t) {
                t.printStackTrace();
            } finally {
                System.out.flush();
                closed.countDown();
            }
        }, "remote-reindex-engine-shutdown"));
        Files.write(dir.resolve("port"), (boundPort + "\n").getBytes(StandardCharsets.UTF_8));
        System.out.println("remote-reindex-engine ready url=http://127.0.0.1:" + boundPort + " flavor=" + flavor + " version=" + current);
        System.out.flush();
        closed.await();
    }

    /** The concrete Plugin classes in the module jars on the classpath (names differ between versions). */
    private static List<Class<?>> modulePlugins(String prefix) throws Throwable {
        Class<?> pluginClass = Class.forName(prefix + ".plugins.Plugin");
        List<Class<?>> found = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path").split(java.io.File.pathSeparator)) {
            String file = Paths.get(entry).getFileName().toString();
            boolean module = false;
            for (String m : MODULE_JARS) {
                module |= file.startsWith(m) && file.endsWith(".jar");
            }
            if (!module) {
                continue;
            }
            try (java.util.jar.JarFile jar = new java.util.jar.JarFile(entry)) {
                for (java.util.Enumeration<java.util.jar.JarEntry> e = jar.entries(); e.hasMoreElements();) {
                    String n = e.nextElement().getName();
                    if (!n.endsWith("Plugin.class") || n.contains("$")) {
                        continue;
                    }
                    Class<?> c = Class.forName(n.substring(0, n.length() - 6).replace('/', '.'), false, Launcher.class.getClassLoader());
                    if (pluginClass.isAssignableFrom(c) && !Modifier.isAbstract(c.getModifiers()) && Modifier.isPublic(c.getModifiers())) {
                        found.add(c);
                    }
                }
            }
        }
        return found;
    }

    /** OpenSearch 3.x takes classpath plugins as PluginInfo descriptors rather than classes. */
    private static List<Object> pluginInfos(String prefix, Object version, List<Class<?>> plugins) throws Throwable {
        Class<?> info = Class.forName(prefix + ".plugins.PluginInfo");
        Constructor<?> c = info.getConstructor(String.class, String.class, String.class, version.getClass(),
                String.class, String.class, List.class, boolean.class);
        List<Object> infos = new ArrayList<>();
        for (Class<?> p : plugins) {
            infos.add(c.newInstance(p.getName(), "classpath plugin", "NA", version,
                    System.getProperty("java.specification.version"), p.getName(), Collections.emptyList(), false));
        }
        return infos;
    }

    private static Object environment(String prefix, Class<?> settingsClass, Object settings) throws Throwable {
        Class<?> envClass = Class.forName(prefix + ".env.Environment");
        try {
            Class<?> prep = Class.forName(prefix + ".node.InternalSettingsPreparer");
            for (Method m : prep.getMethods()) {
                Class<?>[] p = m.getParameterTypes();
                if (m.getName().equals("prepareEnvironment") && Modifier.isStatic(m.getModifiers()) && p.length == 4
                        && p[0] == settingsClass && p[1] == Map.class && p[2] == Path.class && p[3] == Supplier.class) {
                    Supplier<String> name = () -> "rr-node";
                    return m.invoke(null, settings, Collections.emptyMap(), null, name);
                }
            }
        } catch (ClassNotFoundException ignored) {
            // fall through
        }
        return envClass.getConstructor(settingsClass, Path.class).newInstance(settings, null);
    }

    private static int httpPort(String prefix, Object node) throws Throwable {
        Class<?> http = Class.forName(prefix + ".http.HttpServerTransport");
        Object injector = call(node, "injector");
        Method getInstance = injector.getClass().getMethod("getInstance", Class.class);
        getInstance.setAccessible(true);
        Object transport = getInstance.invoke(injector, http);
        Object bound = call(transport, "boundAddress");
        Object publish = call(bound, "publishAddress");
        return ((Number) call(publish, "getPort")).intValue();
    }

    /** Calls a no-argument method, public or not, declared anywhere up the class hierarchy. */
    private static Object call(Object target, String name) throws Throwable {
        for (Class<?> c = target.getClass(); c != null; c = c.getSuperclass()) {
            for (Method m : c.getDeclaredMethods()) {
                if (m.getName().equals(name) && m.getParameterCount() == 0) {
                    m.setAccessible(true);
                    try {
                        return m.invoke(target);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                }
            }
        }
        throw new NoSuchMethodException(target.getClass().getName() + "." + name + "()");
    }

    private static boolean exists(String cls) {
        try {
            Class.forName(cls, false, Launcher.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    private static String names(List<Class<?>> classes) {
        List<String> n = new ArrayList<>();
        for (Class<?> c : classes) {
            n.add(c.getSimpleName());
        }
        return String.join(",", n);
    }

    /** Log4j 2 to stdout (the launcher's log), INFO and up; written before any engine class logs. */
    private static void configureLogging(Path dir) throws IOException {
        Path cfg = dir.resolve("log4j2.properties");
        String text = String.join("\n",
                "status = error",
                "appender.console.type = Console",
                "appender.console.name = console",
                "appender.console.layout.type = PatternLayout",
                "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %marker%m%n",
                "rootLogger.level = info",
                "rootLogger.appenderRef.console.ref = console",
                "logger.deprecation.name = org.elasticsearch.deprecation",
                "logger.deprecation.level = error",
                "logger.osdeprecation.name = org.opensearch.deprecation",
                "logger.osdeprecation.level = error",
                "");
        Files.write(cfg, text.getBytes(StandardCharsets.UTF_8));
        System.setProperty("log4j.configurationFile", cfg.toString());
        System.setProperty("log4j2.configurationFile", cfg.toString());
    }
}

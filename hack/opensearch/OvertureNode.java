// OvertureNode starts one OpenSearch 2.19 node on loopback from jars on the
// classpath (no distribution tarball): Node's constructor that takes classpath
// plugins is protected, so this subclass passes netty4 (HTTP), analysis-common
// (edge n-grams, stemmers) and mapper-extras. It runs until SIGTERM, then closes
// the node.
//
// usage: java -cp 'lib/*:classes' OvertureNode HOME HTTP_PORT TRANSPORT_PORT
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.settings.Settings;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

public class OvertureNode extends Node {
    OvertureNode(Settings settings, Collection<Class<? extends Plugin>> plugins) {
        super(InternalSettingsPreparer.prepareEnvironment(settings, new HashMap<>(), null, () -> "overture"), plugins, true);
    }

    @SuppressWarnings("unchecked")
    static Collection<Class<? extends Plugin>> plugins() throws Exception {
        List<Class<? extends Plugin>> out = new ArrayList<>();
        for (String name : new String[] {
                "org.opensearch.transport.Netty4Plugin",
                "org.opensearch.analysis.common.CommonAnalysisPlugin",
                "org.opensearch.index.mapper.MapperExtrasPlugin"}) {
            try {
                out.add((Class<? extends Plugin>) Class.forName(name));
            } catch (ClassNotFoundException e) {
                if (name.endsWith("Netty4Plugin") || name.endsWith("CommonAnalysisPlugin")) {
                    throw e;
                }
                System.err.println("overture-node: optional plugin missing: " + name);
            }
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: OvertureNode HOME HTTP_PORT TRANSPORT_PORT");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));
        Settings settings = Settings.builder()
                .put("path.home", home.toString())
                .put("path.data", home.resolve("data").toString())
                .put("path.logs", home.resolve("logs").toString())
                .put("cluster.name", "overture")
                .put("node.name", "overture")
                .put("discovery.type", "single-node")
                .put("network.host", "127.0.0.1")
                .put("http.port", args[1])
                .put("transport.port", args[2])
                .put("node.store.allow_mmap", false)
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .put("action.auto_create_index", true)
                .build();
        Node node = new OvertureNode(settings, plugins());
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                System.err.println("overture-node: close: " + e);
            }
            done.countDown();
        }));
        node.start();
        System.out.println("overture-node: started http=127.0.0.1:" + args[1]);
        done.await();
    }
}

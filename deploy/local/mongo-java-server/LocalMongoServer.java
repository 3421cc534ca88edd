// Starts mongo-java-server on its H2 backend: LocalMongoServer <host> <port> <file>.
// The library has no command line of its own that takes a host, port and file.
//
// It answers the handshake with wire version 8 (MongoDB 4.2), below the 9
// (MongoDB 4.4) that our pymongo requires, so the launcher reports 4.4. That
// claim is only what lets pymongo connect: what the server then serves is
// what bench.docstore measures (the views' integration tests included).
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import java.util.List;

public final class LocalMongoServer {
    private static final MongoVersion REPORTED = new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(4, 4, 0);
        }

        @Override
        public int getWireVersion() {
            return 9;
        }
    };

    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: LocalMongoServer <host> <port> <file>");
            System.exit(2);
        }
        H2Backend backend = new H2Backend(args[2]);
        backend.version(REPORTED);
        MongoServer server = new MongoServer(backend);
        server.bind(args[0], Integer.parseInt(args[1]));
        // shutdownNow closes the backend, which commits the H2 file.
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow));
        System.out.println("listening on " + args[0] + ":" + args[1] + ", data in " + args[2]);
    }
}

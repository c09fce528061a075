public enum VigilMain {
    public static func main() async {}
}

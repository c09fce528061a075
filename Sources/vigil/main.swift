import VigilDaemon

await VigilMain.main()
